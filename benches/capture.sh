#!/bin/bash
# Capture benchmark (issue 8): N running containers, each with SIZE MiB of
# changed files and LOG MiB of logs. Measures the first capture, a second
# one after changing 1 MiB in one container, a third with no change, export,
# import (into a second daemon), baseline create and rollback of all, and
# the machine's limit for the archive (`cat`, `openssl dgst -sha256`, which
# uses the SHA extensions as amber's sha2 does; coreutils' sha256sum does not
# and is ~5x slower here), written to disk and synced. Prints figures.
#
#   benches/capture.sh [N] [SIZE_MIB] [LOG_MIB]    (as root; default 10 50 10)
#   AMBER=path/to/amber to use another binary (default: target/debug/amber)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}; SIZE=${2:-50}; LOG=${3:-10}
if [ -z "${AMBER:-}" ]; then cargo build --quiet; AMBER=$PWD/target/debug/amber; fi
base=$(mktemp -d /tmp/amber-capture-bench.XXXXXX)
cg="amber-capbench-$$"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    for d in /sys/fs/cgroup/*/"$cg"* /sys/fs/cgroup/"$cg"*; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null || true; done
    loopfs_umount "$base"
    rm -rf "$base"
}
trap cleanup EXIT
. benches/loopfs.sh
loopfs_mount "$base" 12G
work=$base/mnt
ms() { date +%s%3N; }

start_daemon() { # NAME
    local n=$1
    "$AMBER" daemon --data-root "$work/$n/root" -H "unix://$work/$n.sock" \
        --cgroup-parent "$cg-$n" --bridge "acb$$$n" --config-file /nonexistent \
        >"$work/$n.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do "$AMBER" -H "unix://$work/$n.sock" version >/dev/null 2>&1 && return; sleep 0.05; done
    echo "daemon $n did not start"; cat "$work/$n.log"; exit 1
}
a() { "$AMBER" -H "unix://$work/d1.sock" "$@"; }
b() { "$AMBER" -H "unix://$work/d2.sock" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

tests/images/busybox.sh "$work/busybox.tar"
start_daemon d1
a import "$work/busybox.tar" busybox >/dev/null
lines=$((LOG * 1048576 / 64))
for i in $(seq 1 "$N"); do
    a run -d --name "c$i" busybox sh -c "dd if=/dev/urandom of=/data bs=1M count=$SIZE 2>/dev/null; \
        yes 'a log line of the capture benchmark, sixty-four bytes long....' | head -n $lines; \
        echo ready; while true; do sleep 1; done" >/dev/null
done
for i in $(seq 1 "$N"); do
    until a logs --tail 1 "c$i" 2>/dev/null | grep -q ready; do sleep 0.2; done
done
echo "setup: $N containers x ($SIZE MiB files + $LOG MiB logs); data roots on a loop-mounted journaled ext4"
# A capture ends with one syncfs of the data root, which also flushes
# whatever the containers wrote and the kernel has not written back yet:
# by default the setup's own writes are synced first, so capture 1
# measures the capture (UNSYNCED=1 leaves them to it).
if [ -z "${UNSYNCED:-}" ]; then sync -f "$work"; echo "setup's writes synced before capture 1"; fi

t=$(ms); one=$(a capture --all -l first --format json); t1=$(( $(ms) - t ))
echo "capture 1: ${t1} ms wall, daemon $(echo "$one" | field '["DurationMs"]') ms, new bytes $(echo "$one" | field '["NewBytes"]')"
# Log full-text indexing runs in the background after a capture; a search
# waits for it: time it apart, so capture 2 does not compete with it.
t=$(ms); a bundle search nothing-matches-this >/dev/null || true; tx=$(( $(ms) - t ))
echo "log indexing after capture 1 (search catching up): ${tx} ms"
a exec c1 dd if=/dev/urandom of=/data bs=1M count=1 seek=7 conv=notrunc 2>/dev/null
t=$(ms); two=$(a capture --all -l second --format json); t2=$(( $(ms) - t ))
echo "capture 2 (1 MiB changed): ${t2} ms wall, daemon $(echo "$two" | field '["DurationMs"]') ms, new bytes $(echo "$two" | field '["NewBytes"]')"
t=$(ms); three=$(a capture --all -l third --format json); t3=$(( $(ms) - t ))
echo "capture 3 (no change): ${t3} ms wall, new bytes $(echo "$three" | field '["NewBytes"]')"
frozen=$(echo "$two" | python3 -c "import json,sys; print(max(c['FrozenMs'] for c in json.load(sys.stdin)['Containers']))")
echo "longest freeze in capture 2: ${frozen} ms"

# Export before the baseline: a rollback prepares its next copies in the
# background, which would compete with the export's reads.
id=$(echo "$two" | field '["Id"]')
t=$(ms); a bundle export "$id" -o "$work/b.tar"; te=$(( $(ms) - t ))
size=$(stat -c %s "$work/b.tar")
echo "export: $size bytes in ${te} ms ($(( size / 1048576 * 1000 / (te + 1) )) MiB/s)"
t=$(ms); cat "$work/b.tar" >/dev/null; tc=$(( $(ms) - t ))
t=$(ms); openssl dgst -sha256 "$work/b.tar" >/dev/null; ts=$(( $(ms) - t ))
# Import's limit: hashing the archive while writing it to disk, synced.
t=$(ms); tee "$work/copy.tar" <"$work/b.tar" | openssl dgst -sha256 >/dev/null; sync -f "$work/copy.tar"; tl=$(( $(ms) - t ))
rm -f "$work/copy.tar"
echo "machine: cat ${tc} ms, sha256 (openssl) ${ts} ms, tee to disk + sha256 + sync ${tl} ms"
echo "export / sha256: $(python3 -c "print(round($te / max($ts, 1), 2))"), export / (write + sha256 + sync): $(python3 -c "print(round($te / max($tl, 1), 2))")"
a baseline create clean --all >/dev/null
for i in $(seq 1 "$N"); do a exec "c$i" sh -c 'echo dirty > /dirty; rm /data'; done
t=$(ms); rb=$(a rollback clean --format json); tr=$(( $(ms) - t ))
echo "rollback of $N containers: ${tr} ms wall, daemon $(echo "$rb" | field '["RollbackMs"]') ms, of which stop + swap $(echo "$rb" | field '["StopSwapMs"]') ms (the next rollback's copies are prepared in the background)"
t=$(ms); a rollback clean >/dev/null 2>&1; tr2=$(( $(ms) - t ))
echo "second rollback right after (waits for that preparation): ${tr2} ms wall"

a rm -f $(a ps -aq) >/dev/null
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
rm -rf "$work/d1"
start_daemon d2
t=$(ms); b bundle import "$work/b.tar" >/dev/null; ti=$(( $(ms) - t ))
echo "import: ${ti} ms ($(( size / 1048576 * 1000 / (ti + 1) )) MiB/s)"
echo "import / sha256: $(python3 -c "print(round($ti / max($ts, 1), 2))"), import / (write + sha256 + sync): $(python3 -c "print(round($ti / max($tl, 1), 2))")"
b system check >/dev/null && echo "system check after import: clean"

# Peer: podman's checkpoint of one container of the same shape (CRIU; needs
# runc here, crun refuses the hybrid cgroup layout).
if command -v podman >/dev/null && [ -z "${NO_PODMAN:-}" ]; then
    pimg="localhost/amber-capbench-$$"
    pname="amber-capbench-$$"
    podman import "$work/busybox.tar" "$pimg" >/dev/null 2>&1
    podman run -d --name "$pname" --runtime runc --network none \
        --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 "$pimg" sh -c \
        "dd if=/dev/urandom of=/data bs=1M count=$SIZE 2>/dev/null; \
         yes 'a log line of the capture benchmark, sixty-four bytes long....' | head -n $lines; \
         echo ready; while true; do sleep 1; done" >/dev/null
    until podman logs "$pname" 2>/dev/null | tail -n 1 | grep -q ready; do sleep 0.2; done
    t=$(ms)
    if out=$(podman container checkpoint --export "$work/ck.tar" --compress none --leave-running --keep "$pname" 2>&1); then
        tp=$(( $(ms) - t ))
        echo "podman checkpoint --export of 1 container: ${tp} ms, $(stat -c %s "$work/ck.tar") bytes"
    else
        tp=$(( $(ms) - t ))
        dump=$(podman inspect -f '{{.StaticDir}}' "$pname" 2>/dev/null)/dump.log
        why=$(grep -m1 -i 'error' "$dump" 2>/dev/null || echo "$out" | tail -n 1)
        echo "podman checkpoint --export failed after ${tp} ms: $why"
    fi
    podman rm -f -t 0 "$pname" >/dev/null 2>&1 || true
    podman rmi "$pimg" >/dev/null 2>&1 || true
fi
