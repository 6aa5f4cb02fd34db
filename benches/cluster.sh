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
# The hosts are daemons of their own data roots on this machine, each
# listening with mutual TLS on a loopback port (certificates from `amber
# cluster certs`), which is how the coordinator reaches them. Data roots
# live on a loop-mounted journaled ext4, as in benches/capture.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}; SIZE=${2:-20}; LOG=${3:-5}
if [ -z "${AMBER:-}" ]; then cargo build --quiet; AMBER=${CARGO_TARGET_DIR:-$PWD/target}/debug/amber; fi
base=$(mktemp -d /tmp/amber-cluster-bench.XXXXXX)
work=$base/mnt
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
    loopfs_umount "$base"
    rm -rf "$base"
}
trap cleanup EXIT
. benches/loopfs.sh
loopfs_mount "$base" 12G
port0=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
port() { case $1 in h1) echo $((port0 + 11));; h2) echo $((port0 + 12));; h3) echo $((port0 + 13));; esac; }
"$AMBER" cluster certs --out "$work/pki" h1=127.0.0.1 h2=127.0.0.1 h3=127.0.0.1 >/dev/null
ms() { date +%s%3N; }

start_daemon() { # NAME
    local n=$1 tls=()
    [ "$n" != co ] && tls=(-H "tcp://127.0.0.1:$(port "$n")" --tlsverify --tlscacert "$work/pki/$n/ca.pem" \
        --tlscert "$work/pki/$n/cert.pem" --tlskey "$work/pki/$n/key.pem")
    "$AMBER" daemon --data-root "$work/$n/root" -H "unix://$work/$n.sock" "${tls[@]}" \
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
    on co cluster add "$h" "tcp://127.0.0.1:$(port "$h")" --cert-path "$work/pki/client" >/dev/null
done
for h in h1 h2 h3; do
    for i in $(seq 1 "$N"); do
        until on "$h" logs --tail 1 "c$i" 2>/dev/null | grep -q ready; do sleep 0.2; done
    done
done
echo "setup: 3 hosts x $N containers x ($SIZE MiB files + $LOG MiB logs)"
sync -f "$work"  # the setup's own writes, so that round 1 measures the capture

firsts=(); seconds=(); pcts=()
for run in 1 2 3; do
    t=$(ms); set=$(on co cluster capture -l "first $run" --format json); dt=$(( $(ms) - t ))
    first_bytes=$(echo "$set" | field 'sum(h["bytes"] for h in v["hosts"])')
    ok=$(echo "$set" | field 'sum(h["status"] == "ok" for h in v["hosts"])')
    echo "round $run: first cluster capture ${dt} ms wall, $ok/3 hosts ok, $first_bytes bytes moved (per host, capture + pull: $(echo "$set" | field '", ".join("%s %s ms" % (h["host"], h["ms"]) for h in v["hosts"])'))"
    firsts+=("$dt")
    on h1 exec c1 dd if=/dev/urandom of=/data bs=1M count=1 seek=$((run * 3)) conv=notrunc 2>/dev/null
    t=$(ms); set2=$(on co cluster capture -l "small change $run" --format json); dt=$(( $(ms) - t ))
    bytes=$(echo "$set2" | field 'sum(h["bytes"] for h in v["hosts"])')
    pct=$(python3 -c "print(f'{100 * $bytes / $first_bytes:.2f}')")
    echo "round $run: capture after a 1 MiB change ${dt} ms wall, $bytes bytes moved = ${pct} % of the first's"
    seconds+=("$dt"); pcts+=("$pct")
    # Forget everything: the next round's first capture stores all again.
    for d in co h1 h2 h3; do
        ids=$(on "$d" bundle ls -a -q 2>/dev/null || true)
        [ -n "$ids" ] && on "$d" bundle rm $ids >/dev/null 2>&1 || true
        on "$d" bundle prune -f >/dev/null 2>&1 || on "$d" bundle prune >/dev/null 2>&1 || true
    done
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
echo "median: first cluster capture (time to a complete set) $(med "${firsts[@]}") ms (goal < 3000 ms)"
echo "median: capture after a 1 MiB change $(med "${seconds[@]}") ms, $(med "${pcts[@]}") % of the first's bytes (goal < 5 %)"
