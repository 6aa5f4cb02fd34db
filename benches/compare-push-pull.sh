#!/bin/bash
# Push and pull of a 200 MiB image over loopback: amber and podman side by
# side against the same registry (`amber registry serve`, or Debian's
# docker-registry with SERVER=distribution), fresh registry data for every
# run, same run. Also amber's re-push of an unchanged image. Medians.
#
#   benches/compare-push-pull.sh [RUNS]     (as root; default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
SERVER=${SERVER:-amber}
cargo build --release --quiet
AMBER=$PWD/target/release/amber
work=$(mktemp -d /tmp/amber-reg-bench.XXXXXX)
cg="amber-bench-$$"
daemon=""; server=""
PODMAN=(podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend none)
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    "${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port

start_server() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work/regdata"
    if [ "$SERVER" = amber ]; then
        "$AMBER" registry serve --addr "$REG" --data "$work/regdata" >"$work/server.log" 2>&1 &
    else
        printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$work/regdata" "$REG" >"$work/reg.yml"
        docker-registry serve "$work/reg.yml" >"$work/server.log" 2>&1 &
    fi
    server=$!
    for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && return; sleep 0.05; done
    echo "registry did not start" >&2; cat "$work/server.log" >&2; exit 1
}

mkdir -p "$work/src"
head -c 200M /dev/urandom >"$work/src/big"
tar cf "$work/big.tar" -C "$work/src" big
"$AMBER" daemon --data-root "$work/amber" -H "unix://$work/amber.sock" --cgroup-parent "$cg" \
    --config-file /nonexistent --log-level warn &
daemon=$!
for _ in $(seq 100); do "$AMBER" -H "unix://$work/amber.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
A=("$AMBER" -H "unix://$work/amber.sock")
"${A[@]}" import "$work/big.tar" "$REG/big:1" >/dev/null
"${PODMAN[@]}" import "$work/big.tar" "$REG/pbig:1" >/dev/null

now() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ms() { echo "scale=1; $1 / 1000" | bc; }
ap=(); aq=(); ar=(); pp=(); pq=(); first=""
for r in $(seq "$RUNS"); do
    start_server
    s=$(now); "${A[@]}" push -q "$REG/big:1" >/dev/null; ap+=($(( ($(now) - s) / 1000 )))
    [ -z "$first" ] && first=${ap[0]}
    s=$(now); "${A[@]}" push -q "$REG/big:1" >/dev/null; ar+=($(( ($(now) - s) / 1000 )))
    "${A[@]}" rmi "$REG/big:1" >/dev/null
    s=$(now); "${A[@]}" pull -q "$REG/big:1" >/dev/null; aq+=($(( ($(now) - s) / 1000 )))
    s=$(now); "${PODMAN[@]}" push -q --tls-verify=false "$REG/pbig:1" >/dev/null; pp+=($(( ($(now) - s) / 1000 )))
    "${PODMAN[@]}" rmi "$REG/pbig:1" >/dev/null
    s=$(now); "${PODMAN[@]}" pull -q --tls-verify=false "$REG/pbig:1" >/dev/null; pq+=($(( ($(now) - s) / 1000 )))
done
echo "server: $SERVER; 200 MiB single-layer image (random bytes), gzip layers; $RUNS runs, medians"
printf '%-34s %10s ms\n' "amber push (first, compressing)" "$(ms "$first")"
printf '%-34s %10s ms\n' "amber push (fresh registry)" "$(ms "$(median "${ap[@]}")")"
printf '%-34s %10s ms\n' "podman push (fresh registry)" "$(ms "$(median "${pp[@]}")")"
printf '%-34s %10s ms\n' "amber pull" "$(ms "$(median "${aq[@]}")")"
printf '%-34s %10s ms\n' "podman pull" "$(ms "$(median "${pq[@]}")")"
printf '%-34s %10s ms\n' "amber re-push, unchanged" "$(ms "$(median "${ar[@]}")")"
printf '%-34s %10.3f\n' "ratio push amber/podman" "$(echo "$(median "${ap[@]}") / $(median "${pp[@]}")" | bc -l)"
printf '%-34s %10.3f\n' "ratio pull amber/podman" "$(echo "$(median "${aq[@]}") / $(median "${pq[@]}")" | bc -l)"
