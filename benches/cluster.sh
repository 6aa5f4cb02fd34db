#!/bin/bash
# Cluster capture benchmark (issue 10): 3 hosts x N running containers,
# each with SIZE MiB of changed files and LOG MiB of logs. Measures the time
# to a complete bundle set on the coordinator (median of 3 cluster
# captures; the first one separately), and the bytes moved to the
# coordinator by a capture after a small change (1 MiB in one container)
# against the first capture's. Goals: < 3 s, < 5 % of the first's bytes.
#
#   benches/cluster.sh [N] [SIZE_MIB] [LOG_MIB]    (as root; default 5 20 5)
#   AMBER=path/to/amber to use another binary (a release build, say;
#   default: target/debug/amber, built first)
#
# The hosts are daemons of their own data roots on this machine, reached
# by the coordinator over their unix sockets (the transport the tests use
# until the TCP/TLS listener is merged; see docs/cluster.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}; SIZE=${2:-20}; LOG=${3:-5}
if [ -z "${AMBER:-}" ]; then cargo build --quiet; AMBER=${CARGO_TARGET_DIR:-$PWD/target}/debug/amber; fi
work=$(mktemp -d /tmp/amber-cluster-bench.XXXXXX)
cg="amber-clbench-$$"
pids=()
cleanup() {
    for h in h1 h2 h3; do
        for c in $("$AMBER" -H "unix://$work/$h.sock" ps -aq 2>/dev/null); do
            "$AMBER" -H "unix://$work/$h.sock" rm -f "$c" >/dev/null 2>&1 || true
        done
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    for d in /sys/fs/cgroup/*/"$cg"* /sys/fs/cgroup/"$cg"*; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
ms() { date +%s%3N; }

start_daemon() { # NAME
    local n=$1
    "$AMBER" daemon --data-root "$work/$n/root" -H "unix://$work/$n.sock" \
        --cgroup-parent "$cg-$n" --bridge "acl$$$n" --config-file /nonexistent \
        >"$work/$n.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do "$AMBER" -H "unix://$work/$n.sock" version >/dev/null 2>&1 && return; sleep 0.05; done
    echo "daemon $n did not start"; cat "$work/$n.log"; exit 1
}
on() { local n=$1; shift; "$AMBER" -H "unix://$work/$n.sock" "$@"; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }

tests/images/busybox.sh "$work/busybox.tar"
start_daemon co
lines=$((LOG * 1048576 / 64))
for h in h1 h2 h3; do
    start_daemon "$h"
    on "$h" import "$work/busybox.tar" busybox >/dev/null
    for i in $(seq 1 "$N"); do
        on "$h" run -d --name "c$i" busybox sh -c "dd if=/dev/urandom of=/data bs=1M count=$SIZE 2>/dev/null; \
            yes 'a log line of the cluster benchmark, sixty-four bytes long....' | head -n $lines; \
            echo ready; while true; do sleep 1; done" >/dev/null
    done
    on co cluster add "$h" "unix://$work/$h.sock" >/dev/null
done
for h in h1 h2 h3; do
    for i in $(seq 1 "$N"); do
        until on "$h" logs --tail 1 "c$i" 2>/dev/null | grep -q ready; do sleep 0.2; done
    done
done
echo "setup: 3 hosts x $N containers x ($SIZE MiB files + $LOG MiB logs)"

times=()
for run in 1 2 3; do
    t=$(ms); set=$(on co cluster capture -l "run $run" --format json); dt=$(( $(ms) - t ))
    bytes=$(echo "$set" | field 'sum(h["bytes"] for h in v["hosts"])')
    ok=$(echo "$set" | field 'sum(h["status"] == "ok" for h in v["hosts"])')
    echo "cluster capture $run: ${dt} ms wall, $ok/3 hosts ok, $bytes bytes moved"
    times+=("$dt")
    [ "$run" = 1 ] && first_bytes=$bytes
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "time to a complete set: median ${median} ms (goal < 3000 ms)"

on h1 exec c1 dd if=/dev/urandom of=/data bs=1M count=1 seek=7 conv=notrunc 2>/dev/null
t=$(ms); set=$(on co cluster capture -l "small change" --format json); dt=$(( $(ms) - t ))
bytes=$(echo "$set" | field 'sum(h["bytes"] for h in v["hosts"])')
pct=$(python3 -c "print(f'{100 * $bytes / $first_bytes:.1f}')")
echo "capture after a 1 MiB change: ${dt} ms wall, $bytes bytes moved = ${pct} % of the first's $first_bytes (goal < 5 %)"
