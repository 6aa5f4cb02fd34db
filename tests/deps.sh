#!/bin/sh
# Install what amber's build, demo and tests need on Debian 12 (run as root).
# Idempotent: only installs what is missing.
set -eu
export DEBIAN_FRONTEND=noninteractive

need_apt=""
command -v gcc >/dev/null 2>&1 || need_apt="$need_apt gcc libc6-dev"
command -v curl >/dev/null 2>&1 || need_apt="$need_apt curl ca-certificates"
command -v python3 >/dev/null 2>&1 || need_apt="$need_apt python3 python3-pip"
dpkg -s busybox-static >/dev/null 2>&1 || need_apt="$need_apt busybox-static"
command -v zstd >/dev/null 2>&1 || need_apt="$need_apt zstd"
# ADD of .tar.xz / .tar.bz2 in builds goes through these tools.
command -v xz >/dev/null 2>&1 || need_apt="$need_apt xz-utils"
command -v bzip2 >/dev/null 2>&1 || need_apt="$need_apt bzip2"
command -v ps >/dev/null 2>&1 || need_apt="$need_apt procps"
# capture --core takes core dumps with gdb's gcore; tests load them in gdb.
command -v gcore >/dev/null 2>&1 || need_apt="$need_apt gdb"
# The progress tests run the CLI on a pty made by script(1).
command -v script >/dev/null 2>&1 || need_apt="$need_apt bsdutils"
# Peers for archive interop tests (amber never runs through them); podman
# runs what amber saved with runc (crun refuses this hybrid cgroup layout).
command -v podman >/dev/null 2>&1 || need_apt="$need_apt podman"
command -v runc >/dev/null 2>&1 || need_apt="$need_apt runc"
command -v skopeo >/dev/null 2>&1 || need_apt="$need_apt skopeo"
# The reference registry (distribution) and htpasswd, for the registry client tests.
command -v docker-registry >/dev/null 2>&1 || need_apt="$need_apt docker-registry"
command -v htpasswd >/dev/null 2>&1 || need_apt="$need_apt apache2-utils"
# Container networking: bridges and veths (ip), the NAT table (nft), and
# network namespaces kept by bind mounts (unshare, nsenter).
command -v ip >/dev/null 2>&1 || need_apt="$need_apt iproute2"
command -v nft >/dev/null 2>&1 || need_apt="$need_apt nftables"
command -v nsenter >/dev/null 2>&1 || need_apt="$need_apt util-linux"
# Self-signed certificates for the registry server's TLS tests.
command -v openssl >/dev/null 2>&1 || need_apt="$need_apt openssl"
# The docker CLI is a test client of amber's API (amber never runs dockerd).
command -v docker >/dev/null 2>&1 || need_apt="$need_apt docker.io"
if [ -n "$need_apt" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $need_apt >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi

# The docker Python SDK, a test client of the Docker-compatible API.
if ! python3 -c 'import docker' >/dev/null 2>&1; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null
    fi
    python3 -m pip install -q 'docker>=7,<8' 2>/dev/null ||
        python3 -m pip install -q --break-system-packages 'docker>=7,<8'
fi
