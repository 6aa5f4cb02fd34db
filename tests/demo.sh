#!/bin/sh
# amber demo: install what is missing, build, start a daemon on a temporary
# data root, import a busybox image (built offline from busybox-static),
# list and inspect it with amber and with the docker CLI, run containers,
# commit one, save and load it, then stop.
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
# A tester's change, committed, saved, and loaded back as another host would.
"$AMBER" run --name bug busybox sh -c 'echo "state of bug 1234" > /evidence.txt'
"$AMBER" commit -m "bug 1234" bug bug:1234
"$AMBER" history bug:1234
"$AMBER" save -o "$work/bug.tar" bug:1234
"$AMBER" rm bug
"$AMBER" rmi bug:1234
"$AMBER" load -i "$work/bug.tar"
"$AMBER" run --rm bug:1234 cat /evidence.txt
"$AMBER" system check
