#!/bin/sh
# Run amber's whole test suite (as root: the tests use real namespaces,
# overlayfs and cgroups). Installs what is missing first.
set -eu
cd "$(dirname "$0")/.."
tests/deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
cargo test --all-targets --no-fail-fast
