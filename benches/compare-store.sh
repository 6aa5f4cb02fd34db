#!/bin/bash
# Commit, save and load, amber side by side with podman and docker (when
# installed), same busybox image, same changes, same run, data roots on one
# loop-mounted journaled ext4 (see ../shared/PEERS.md on the root fs):
#   (a) 1000 files of 4 KiB    (b) one 200 MiB file
# For each: commit of a stopped container (right after it exits, and for
# amber also once the digest it defers to the exit is ready), commit of a
# running one, save to a file (written and fsynced) and to a pipe, load,
# archive size; and the machine's limits for the archive: `cat`, `cat` +
# sha256 (coreutils `sha256sum`, and `openssl dgst -sha256`, which uses the
# CPU's SHA extensions as amber does), and `cat` + sha256 + a durable copy
# (what a save to a file or a load must at least do). Prints medians and
# ratios.
#
#   benches/compare-store.sh [RUNS]     (as root; default 5 runs each)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
cargo build --release --quiet
AMBER=$PWD/target/release/amber
work=$(mktemp -d /tmp/amber-store-bench.XXXXXX)
mnt=$work/mnt
cg="amber-bench-$$"
daemon=""; dpid=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null || true
    if command -v podman >/dev/null; then
        "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
        "${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
    fi
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    grep -o " $mnt[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    umount -l "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$mnt"
truncate -s 12G "$work/fs.img"
mkfs.ext4 -q -F "$work/fs.img"
mount -o loop "$work/fs.img" "$mnt"
PODMAN=(podman --root "$mnt/podman" --runroot "$work/podman-run" --storage-driver overlay --cgroup-manager cgroupfs --events-backend none)
PRUN=(--runtime runc --cgroup-parent "$cg" --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --network none)

tests/images/busybox.sh "$work/busybox.tar"
"$AMBER" daemon --data-root "$mnt/amber" -H "unix://$work/amber.sock" --cgroup-parent "$cg" --log-level warn &
daemon=$!
for _ in $(seq 100); do "$AMBER" -H "unix://$work/amber.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
A=("$AMBER" -H "unix://$work/amber.sock")
"${A[@]}" import "$work/busybox.tar" busybox >/dev/null

have_podman=""; have_docker=""
if command -v podman >/dev/null; then
    "${PODMAN[@]}" import "$work/busybox.tar" busybox >/dev/null && have_podman=1
else
    echo "podman: not installed (apt-get install -y podman runc) — skipped" >&2
fi
if command -v dockerd >/dev/null; then
    dsock="unix://$work/docker.sock"
    dockerd --data-root "$mnt/docker" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
        -H "$dsock" --bridge none --iptables=false >"$work/dockerd.log" 2>&1 &
    dpid=$!
    for _ in $(seq 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
    D=(env DOCKER_HOST="$dsock" docker)
    "${D[@]}" import "$work/busybox.tar" busybox >/dev/null && have_docker=1
else
    echo "docker: no dockerd installed (apt-get install -y docker.io) — skipped" >&2
fi

now() { date +%s%N; }
# median of microsecond values
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ms() { echo "scale=1; $1 / 1000" | bc; }
declare -A R   # R[engine,case,op] = median µs

# engine_cmd ENGINE: the client command array name
cli() { case $1 in amber) echo A ;; podman) echo PODMAN ;; docker) echo D ;; esac; }
runflags() { case $1 in podman) echo "${PRUN[@]}" ;; *) echo "" ;; esac; }

CHANGE_small='mkdir /d && i=0 && while [ $i -lt 1000 ]; do head -c 4096 /dev/urandom > /d/f$i; i=$((i+1)); done'
CHANGE_big='dd if=/dev/urandom of=/big bs=1M count=200 2>/dev/null'

bench_engine() {
    local e=$1 case=$2 change=$3
    local -n C=$(cli "$e")
    local flags; flags=$(runflags "$e")
    local t=() s
    # commit of a stopped container (a fresh container each run)
    for r in $(seq "$RUNS"); do
        # shellcheck disable=SC2086
        "${C[@]}" run $flags --name "b-$case-$r" busybox sh -c "$change" >/dev/null
        sync
        s=$(now); "${C[@]}" commit "b-$case-$r" "img-$case:$r" >/dev/null; t+=($(( ($(now) - s) / 1000 )))
        "${C[@]}" rm -f "b-$case-$r" >/dev/null
    done
    R[$e,$case,commit]=$(median "${t[@]}"); t=()
    # amber: commit once the digest deferred to the exit is ready (the
    # daemon hashes an exited container's changes in the background)
    if [ "$e" = amber ]; then
        for r in $(seq "$RUNS"); do
            "${C[@]}" run --name "d-$case-$r" busybox sh -c "$change" >/dev/null
            local id; id=$("${C[@]}" inspect -f '{{.Id}}' "d-$case-$r")
            for _ in $(seq 300); do [ -f "$mnt/amber/containers/$id/layer-digest.json" ] && break; sleep 0.05; done
            sync
            s=$(now); "${C[@]}" commit "d-$case-$r" "ready-$case:$r" >/dev/null; t+=($(( ($(now) - s) / 1000 )))
            "${C[@]}" rm -f "d-$case-$r" >/dev/null
            "${C[@]}" rmi "ready-$case:$r" >/dev/null
        done
        R[$e,$case,commit_ready]=$(median "${t[@]}"); t=()
    fi
    # commit of a running container (paused for the copy where supported)
    for r in $(seq "$RUNS"); do
        # shellcheck disable=SC2086
        "${C[@]}" run -d $flags --name "r-$case-$r" busybox sh -c "$change; touch /ready; sleep 1000" >/dev/null
        until "${C[@]}" exec "r-$case-$r" test -f /ready 2>/dev/null; do sleep 0.2; done
        sync
        s=$(now); "${C[@]}" commit "r-$case-$r" "run-$case:$r" >/dev/null; t+=($(( ($(now) - s) / 1000 )))
        "${C[@]}" rm -f "r-$case-$r" >/dev/null
        "${C[@]}" rmi "run-$case:$r" >/dev/null
    done
    R[$e,$case,commit_running]=$(median "${t[@]}"); t=()
    for r in $(seq 2 "$RUNS"); do "${C[@]}" rmi "img-$case:$r" >/dev/null; done
    local img="img-$case:1" f="$mnt/$e-$case.tar"
    # save
    for r in $(seq "$RUNS"); do
        rm -f "$f"; sync
        s=$(now); "${C[@]}" save -o "$f" "$img" >/dev/null; t+=($(( ($(now) - s) / 1000 )))
    done
    R[$e,$case,save]=$(median "${t[@]}"); t=()
    R[$e,$case,size]=$(stat -c %s "$f")
    # save to a pipe (nothing written to disk)
    for r in $(seq "$RUNS"); do
        s=$(now); "${C[@]}" save "$img" | cat >/dev/null; t+=($(( ($(now) - s) / 1000 )))
    done
    R[$e,$case,save_pipe]=$(median "${t[@]}"); t=()
    # load (the image and its top layer removed before each run)
    for r in $(seq "$RUNS"); do
        "${C[@]}" rmi "$img" >/dev/null
        sync
        s=$(now); "${C[@]}" load -i "$f" >/dev/null; t+=($(( ($(now) - s) / 1000 )))
    done
    R[$e,$case,load]=$(median "${t[@]}"); t=()
    "${C[@]}" rmi "$img" >/dev/null
    # the machine's limit for this archive: read it, read + sha256 it
    if [ "$e" = amber ]; then
        for r in $(seq "$RUNS"); do s=$(now); cat "$f" >/dev/null; t+=($(( ($(now) - s) / 1000 ))); done
        R[limit,$case,cat]=$(median "${t[@]}"); t=()
        for r in $(seq "$RUNS"); do s=$(now); cat "$f" | sha256sum >/dev/null; t+=($(( ($(now) - s) / 1000 ))); done
        R[limit,$case,sha]=$(median "${t[@]}"); t=()
        for r in $(seq "$RUNS"); do s=$(now); cat "$f" | openssl dgst -sha256 >/dev/null; t+=($(( ($(now) - s) / 1000 ))); done
        R[limit,$case,fastsha]=$(median "${t[@]}"); t=()
        for r in $(seq "$RUNS"); do
            rm -f "$f.copy"; sync
            s=$(now); cat "$f" | tee "$f.copy" | openssl dgst -sha256 >/dev/null; sync "$f.copy"; t+=($(( ($(now) - s) / 1000 )))
        done
        rm -f "$f.copy"
        R[limit,$case,durable]=$(median "${t[@]}"); t=()
    fi
    rm -f "$f"
}

engines=(amber)
[ -n "$have_podman" ] && engines+=(podman)
[ -n "$have_docker" ] && engines+=(docker)
for case in small big; do
    change_var="CHANGE_$case"
    for e in "${engines[@]}"; do
        echo "... $e, case $case" >&2
        bench_engine "$e" "$case" "${!change_var}"
    done
done

echo
echo "data roots on: $(df -T "$mnt" | awk 'NR==2 {print $2}') (loop, journaled); $RUNS runs each, medians"
for case in small big; do
    [ $case = small ] && echo "## (a) 1000 files of 4 KiB" || echo "## (b) one 200 MiB file"
    printf '%-16s' "operation"; for e in "${engines[@]}"; do printf '%14s' "$e"; done
    for e in "${engines[@]:1}"; do printf '%16s' "amber/$e"; done; echo
    for op in commit commit_ready commit_running save save_pipe load size; do
        printf '%-16s' "$op"
        for e in "${engines[@]}"; do
            v=${R[$e,$case,$op]:-}
            if [ -z "$v" ]; then printf '%14s' "-"
            elif [ $op = size ]; then printf '%11.1f MB' "$(echo "$v / 1000000" | bc -l)"
            else printf '%11s ms' "$(ms "$v")"; fi
        done
        for e in "${engines[@]:1}"; do
            # commit_ready (amber only) against the others' only commit
            local_op=$op; [ $op = commit_ready ] && local_op=commit
            printf '%16.3f' "$(echo "${R[amber,$case,$op]} / ${R[$e,$case,$local_op]}" | bc -l)"
        done
        echo
    done
    ratio() { echo "scale=2; ${R[amber,$case,$1]} / ${R[limit,$case,$2]}" | bc; }
    echo "limits for amber's archive: cat $(ms "${R[limit,$case,cat]}") ms;" \
        "cat | sha256sum $(ms "${R[limit,$case,sha]}") ms; cat | openssl sha256 $(ms "${R[limit,$case,fastsha]}") ms;" \
        "cat | tee copy | openssl sha256 + sync copy $(ms "${R[limit,$case,durable]}") ms"
    echo "  against cat | sha256sum:        save $(ratio save sha), save to a pipe $(ratio save_pipe sha), load $(ratio load sha)"
    echo "  against cat | openssl sha256:   save $(ratio save fastsha), save to a pipe $(ratio save_pipe fastsha), load $(ratio load fastsha)"
    echo "  against the same + durable copy: save $(ratio save durable), load $(ratio load durable)"
    echo
done
