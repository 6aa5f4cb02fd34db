# Sourced by the benches: a fresh loop-mounted journaled ext4 for data
# roots and archives. The root fs here turns mass creates after mass
# deletes into seconds of kernel time (../shared/PEERS.md), which would make
# a run depend on the one before.

# loopfs_mount BASE SIZE: mount a SIZE (sparse) ext4 image at BASE/mnt.
loopfs_mount() {
    truncate -s "$2" "$1/fs.img"
    mkfs.ext4 -q -F "$1/fs.img"
    mkdir -p "$1/mnt"
    mount -o loop "$1/fs.img" "$1/mnt"
}

# loopfs_umount BASE: unmount BASE/mnt and whatever is mounted below it.
loopfs_umount() {
    grep -o " $1/mnt[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    umount -l "$1/mnt" 2>/dev/null || true
}
