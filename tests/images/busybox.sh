#!/bin/sh
# Build a busybox root filesystem (no network needed) from Debian's busybox-static.
#   tests/images/busybox.sh OUT.tar        writes a tar of the rootfs
#   tests/images/busybox.sh --dir OUTDIR   writes the rootfs into a directory
# Installs busybox-static with apt-get when it is missing.
set -eu

if ! dpkg -s busybox-static 2>/dev/null | grep -q '^Status: install ok installed'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null 2>&1
fi
BB=/bin/busybox

mode=tar
if [ "${1:-}" = "--dir" ]; then mode=dir; shift; fi
out=${1:?usage: busybox.sh [--dir] OUT}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
if [ "$mode" = dir ]; then root=$out; fi
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin etc root tmp proc sys dev var/log home
chmod 1777 tmp
cp "$BB" bin/busybox
for applet in $("$BB" --list-full); do
    case "$applet" in bin/busybox) continue ;; esac
    d=$(dirname "$applet")
    mkdir -p "$d"
    if [ "$d" = . ]; then rel=.; else rel=$(echo "$d" | sed 's|[^/][^/]*|..|g'); fi
    [ -e "$applet" ] || ln -s "$rel/bin/busybox" "$applet"
done
cat > etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
tester:x:1000:1000:tester:/home/tester:/bin/sh
P
cat > etc/group <<'G'
root:x:0:
daemon:x:1:
wheel:x:10:tester
users:x:100:tester
nogroup:x:65534:
tester:x:1000:
G
mkdir -p home/tester && chown 1000:1000 home/tester
echo 'amber-busybox' > etc/amber-release

if [ "$mode" = tar ]; then
    case "$out" in /*) ;; *) out="$OLDPWD/$out" ;; esac
    tar --numeric-owner -cf "$out" -C "$root" .
fi
