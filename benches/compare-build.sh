#!/bin/bash
# A 10-step Dockerfile (ENV, WORKDIR, COPY of 5 files, 3 RUN, LABEL, EXPOSE,
# CMD) built fresh (--no-cache) and fully cached, amber side by side with
# `podman build` (buildah) on the same busybox image, in the same run.
# Prints medians and ratios.
#
#   benches/compare-build.sh [RUNS]        (as root; default 10 runs each)
#   AMBER=path/to/amber benches/compare-build.sh   (skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
if [ -z "${AMBER:-}" ]; then
    cargo build --release --quiet
    AMBER=$PWD/target/release/amber
fi
work=$(mktemp -d /tmp/amber-bench-build.XXXXXX)
sock="unix://$work/amber.sock"
cg="amber-bench-build-$$"
daemon=""
P=(podman --root "$work/podman-root" --runroot "$work/podman-run")
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    if command -v podman >/dev/null; then "${P[@]}" system reset -f >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

tests/images/busybox.sh "$work/busybox.tar"
"$AMBER" daemon --data-root "$work/root" -H "$sock" --cgroup-parent "$cg" --log-level warn &
daemon=$!
for _ in $(seq 100); do [ -S "$work/amber.sock" ] && break; sleep 0.05; done
export AMBER_HOST="$sock"
"$AMBER" import "$work/busybox.tar" bb >/dev/null

ctx=$work/ctx
mkdir -p "$ctx"
for i in 1 2 3 4 5; do head -c 65536 /dev/urandom >"$ctx/f$i"; done
cat >"$ctx/Dockerfile" <<'DF'
FROM bb
ENV APP=/app
WORKDIR /app
COPY f1 f2 f3 f4 f5 ./
RUN echo one > one.txt
RUN mkdir -p data && cp f1 data/
RUN echo three > three.txt
LABEL bench=build
EXPOSE 8080
CMD ["sh"]
DF

# time_runs LABEL CMD... : run CMD $RUNS times (after one warm-up), print the median in µs.
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
amber_fresh=$(time_runs "amber build --no-cache (10 steps)" "$AMBER" build --no-cache -t bench:1 "$ctx")
amber_cached=$(time_runs "amber build, fully cached" "$AMBER" build -t bench:1 "$ctx")

podman_fresh=""; podman_cached=""
if command -v podman >/dev/null; then
    "${P[@]}" import "$work/busybox.tar" bb >/dev/null 2>&1
    B=("${P[@]}" build --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 -t bench:1)
    podman_fresh=$(time_runs "podman build --no-cache" "${B[@]}" --no-cache "$ctx") || podman_fresh=""
    podman_cached=$(time_runs "podman build, fully cached" "${B[@]}" "$ctx") || podman_cached=""
else
    echo "podman: not installed (apt-get install -y podman runc) — skipped" >&2
fi

ratio() { [ -n "$3" ] && printf '%-44s %.2f\n' "$1" "$(echo "$2 / $3" | bc -l)" >&2 || true; }
ratio "ratio amber / podman, fresh" "$amber_fresh" "$podman_fresh"
ratio "ratio amber / podman, cached" "$amber_cached" "$podman_cached"
