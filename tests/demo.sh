#!/bin/sh
# amber demo: install what is missing, build, start a daemon on a temporary
# data root, import a busybox image (built offline from busybox-static),
# list and inspect it with amber and with the docker CLI, then stop.
set -eu
cd "$(dirname "$0")/.."
tests/deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
AMBER=$PWD/target/release/amber

work=$(mktemp -d /tmp/amber-demo.XXXXXX)
sock="unix://$work/amber.sock"
"$AMBER" daemon --data-root "$work/root" -H "$sock" --log-level warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -S "$work/amber.sock" ] && break; sleep 0.05; done

export AMBER_HOST="$sock"
set -x
tests/images/busybox.sh "$work/busybox.tar"
"$AMBER" version
"$AMBER" import "$work/busybox.tar" busybox:latest
"$AMBER" tag busybox demo/busybox:v1
"$AMBER" images
"$AMBER" inspect --format '{{.Id}} {{json .RootFS.Layers}}' busybox
DOCKER_HOST="$sock" docker images
"$AMBER" run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"'
"$AMBER" run -d --name demo busybox sh -c 'echo started; sleep 60'
"$AMBER" ps
"$AMBER" exec demo ps
"$AMBER" logs demo
"$AMBER" rm -f demo
"$AMBER" system check
