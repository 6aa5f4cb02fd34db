#!/bin/bash
# Regenerate the version 1 reference bundles (as root):
#   snapshots/v1/make.sh [path/to/amber]
# Two captures of one busybox container ("ref"), the second after it ran
# again (/srv/runs.txt grew, a new log line); each exported as its own archive.
set -euo pipefail
cd "$(dirname "$0")/../.."
AMBER=${1:-$PWD/target/debug/amber}
out=$PWD/snapshots/v1
work=$(mktemp -d /tmp/amber-snapshot.XXXXXX)
cg="amber-snapshot-$$"
"$AMBER" daemon --data-root "$work/root" -H "unix://$work/s.sock" --cgroup-parent "$cg" \
    --bridge "asn$$" --config-file /nonexistent >"$work/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null || true; wait $dpid 2>/dev/null || true; rmdir /sys/fs/cgroup/$cg 2>/dev/null || true; rm -rf "$work"' EXIT
a() { "$AMBER" -H "unix://$work/s.sock" "$@"; }
for _ in $(seq 200); do a version >/dev/null 2>&1 && break; sleep 0.05; done
tests/images/busybox.sh "$work/busybox.tar"
a import "$work/busybox.tar" busybox >/dev/null
a run --name ref -e REF=v1 busybox sh -c \
    'echo reference-line-one; mkdir -p /srv/data; echo run >> /srv/runs.txt; echo v1 > /etc/ref.conf;
     echo hello > /srv/data/a.txt; ln -sf a.txt /srv/data/link; rm -f /etc/group' >/dev/null
one=$(a capture ref -l "reference v1 a" --annotate format=1)
a start ref >/dev/null
a wait ref >/dev/null
two=$(a capture ref -l "reference v1 b")
a bundle export "$one" -o "$out/a.tar"
a bundle export "$two" -o "$out/b.tar"
echo "$one $two" > "$out/ids"
a rm -f ref >/dev/null
echo "wrote $out/a.tar ($one) and $out/b.tar ($two)"
