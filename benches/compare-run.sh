#!/bin/bash
# End-to-end `run --rm busybox true` (CLI → daemon → container → exit):
# amber side by side with podman and docker when they are installed, on the
# same busybox image, in the same run; then 50 detached containers started
# and removed in one loop, with a leak check. Prints medians and ratios.
#
#   benches/compare-run.sh [RUNS]        (as root; default 20 runs each)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
cargo build --release --quiet
AMBER=$PWD/target/release/amber
work=$(mktemp -d /tmp/amber-bench.XXXXXX)
sock="unix://$work/amber.sock"
cg="amber-bench-$$"
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    if command -v podman >/dev/null; then podman rmi -f amberbench-busybox >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

tests/images/busybox.sh "$work/busybox.tar"
"$AMBER" daemon --data-root "$work/root" -H "$sock" --cgroup-parent "$cg" --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$work/amber.sock" ] && break; sleep 0.05; done
export AMBER_HOST="$sock"
"$AMBER" import "$work/busybox.tar" busybox >/dev/null

# time_runs LABEL CMD... : run CMD $RUNS times (after one warm-up), print the median in ms.
time_runs() {
    local label=$1; shift
    "$@" >/dev/null 2>&1 || { echo "$label: failed: $*" >&2; return 1; }
    local t=()
    for _ in $(seq "$RUNS"); do
        local s e
        s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
        t+=($(( (e - s) / 1000 )))
    done
    local med
    med=$(printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
    printf '%-44s median %8.1f ms   (%d runs)\n' "$label" "$(echo "$med / 1000" | bc -l)" "$RUNS" >&2
    echo "$med"
}

echo "filesystem of the data roots: $(df -T "$work" | awk 'NR==2 {print $2}')" >&2
amber_us=$(time_runs "amber run --rm busybox true" "$AMBER" run --rm busybox true)

podman_us=""; podman_none_us=""
if command -v podman >/dev/null; then
    podman import "$work/busybox.tar" amberbench-busybox >/dev/null
    P=(podman run --rm --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
    podman_us=$(time_runs "podman run --rm (default network)" "${P[@]}" amberbench-busybox true) || podman_us=""
    podman_none_us=$(time_runs "podman run --rm --network none" "${P[@]}" --network none amberbench-busybox true) || podman_none_us=""
else
    echo "podman: not installed (apt-get install -y podman runc) — skipped" >&2
fi

docker_us=""
if command -v dockerd >/dev/null; then
    dsock="unix://$work/docker.sock"
    dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
        -H "$dsock" --bridge none --iptables=false >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
    DOCKER_HOST=$dsock docker import "$work/busybox.tar" busybox >/dev/null
    docker_us=$(DOCKER_HOST=$dsock time_runs "docker run --rm (dockerd)" env DOCKER_HOST="$dsock" docker run --rm busybox true) || docker_us=""
    kill "$dpid"; wait "$dpid" 2>/dev/null || true
else
    echo "docker: no dockerd installed (apt-get install -y docker.io) — skipped" >&2
fi

ratio() { [ -n "$2" ] && printf '%-44s %.2f\n' "$1" "$(echo "$amber_us / $2" | bc -l)" >&2 || true; }
ratio "ratio amber / podman (default network)" "$podman_us"
ratio "ratio amber / podman --network none" "$podman_none_us"
ratio "ratio amber / docker" "$docker_us"

# 50 detached containers started, then removed, in one loop; nothing leaks.
fds_before=$(ls /proc/"$daemon"/fd | wc -l)
s=$(date +%s%N)
ids=()
for i in $(seq 50); do ids+=("$("$AMBER" run -d busybox sleep 1000)"); done
m=$(date +%s%N)
"$AMBER" rm -f "${ids[@]}" >/dev/null
e=$(date +%s%N)
printf '%-44s %8.1f ms\n' "50 × run -d" "$(echo "($m - $s) / 1000000" | bc -l)" >&2
printf '%-44s %8.1f ms\n' "rm -f of the 50" "$(echo "($e - $m) / 1000000" | bc -l)" >&2
sleep 1
fds_after=$(ls /proc/"$daemon"/fd | wc -l)
mounts=$(grep -c "$work" /proc/self/mountinfo || true)
cgroups=$({ find /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg" -mindepth 1 -type d 2>/dev/null || true; } | wc -l)
shims=$(pgrep -fc "amber shim .*$work" || true)
echo "after removal: daemon fds $fds_before -> $fds_after, mounts $mounts, cgroups $cgroups, shims $shims" >&2
[ "$mounts" = 0 ] && [ "$cgroups" = 0 ] && [ "$shims" = 0 ] && [ "$fds_after" -le "$((fds_before + 2))" ]
