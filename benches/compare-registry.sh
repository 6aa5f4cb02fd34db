#!/bin/bash
# Registry servers side by side: `amber registry serve` and Debian's
# docker-registry (distribution 2.8, the `registry:2` code), same client
# (skopeo), same image (one 200 MiB layer of random bytes, OCI layout),
# same run, data directories on one loop-mounted journaled ext4 (see
# ../shared/PEERS.md on the root fs). Each run starts both servers on empty
# data directories, then times with skopeo:
#   push       OCI layout -> registry
#   re-push    the same again (every blob already there)
#   pull       registry -> a fresh OCI layout
# Prints medians and amber's ratios.
#
#   benches/compare-registry.sh [RUNS]    (as root; default 5)
#   AMBER=target/debug/amber benches/compare-registry.sh   (skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
if [ -z "${AMBER:-}" ]; then
    cargo build --release --quiet
    AMBER=$PWD/target/release/amber
fi
AMBER=$(realpath "$AMBER")
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
work=$(mktemp -d /tmp/amber-registry-bench.XXXXXX)
mnt=$work/mnt
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    umount -l "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"
truncate -s 4G "$work/fs.img"
mkfs.ext4 -q -F "$work/fs.img"
mount -o loop "$work/fs.img" "$mnt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sha() { sha256sum "$1" | cut -c1-64; }

# The image: one uncompressed tar layer holding a 200 MiB random file.
img=$work/layout
mkdir -p "$img/blobs/sha256" "$work/rootfs"
head -c $((200 << 20)) /dev/urandom > "$work/rootfs/big"
tar -C "$work/rootfs" -cf "$work/layer.tar" big
layer=$(sha "$work/layer.tar"); lsize=$(stat -c %s "$work/layer.tar")
mv "$work/layer.tar" "$img/blobs/sha256/$layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" > "$work/config"
config=$(sha "$work/config"); csize=$(stat -c %s "$work/config")
mv "$work/config" "$img/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$csize" "$layer" "$lsize" > "$work/manifest"
manifest=$(sha "$work/manifest"); msize=$(stat -c %s "$work/manifest")
mv "$work/manifest" "$img/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
    "$manifest" "$msize" > "$img/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$img/oci-layout"
sync

start_amber() { # port dir
    "$AMBER" --log-level warn registry serve --addr "127.0.0.1:$1" --data "$2" & pids+=($!)
}
start_distribution() { # port dir
    cat > "$2.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $2}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$1}
EOF
    docker-registry serve "$2.yml" >/dev/null 2>&1 & pids+=($!)
}
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return; sleep 0.05; done; echo "server on $1 did not start" >&2; exit 1; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
SK=(skopeo --insecure-policy)

declare -A times
for run in $(seq "$RUNS"); do
    for server in amber distribution; do
        port=$(free_port); data=$mnt/$server-$run
        "start_$server" "$port" "$data"; wait_up "$port"
        dest="docker://127.0.0.1:$port/bench/img:v1"
        times[$server-push]+="$(ms "${SK[@]}" copy --dest-tls-verify=false "oci:$img:v1" "$dest") "
        times[$server-repush]+="$(ms "${SK[@]}" copy --dest-tls-verify=false "oci:$img:v1" "$dest") "
        times[$server-pull]+="$(ms "${SK[@]}" copy --src-tls-verify=false "$dest" "oci:$mnt/pulled-$server-$run:v1") "
        kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
        rm -rf "$data" "$mnt/pulled-$server-$run"
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-10s %12s %16s %8s\n' op amber_ms distribution_ms ratio
for op in push repush pull; do
    a=$(echo "${times[amber-$op]}" | median); d=$(echo "${times[distribution-$op]}" | median)
    printf '%-10s %12s %16s %8s\n' "$op" "$a" "$d" "$(awk -v a="$a" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
done
echo "($RUNS runs each, 200 MiB layer, skopeo $(skopeo --version | awk '{print $3}'), data on loop-mounted ext4)"
