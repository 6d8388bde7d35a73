#!/bin/bash
# The vmemfs demo: installs what it needs, builds, boots a small Linux guest under QEMU (TCG)
# and snapshots it (or reuses the snapshots), mounts them and shows the files.
# Run as root on Debian 12. Leaves the mount at $MNT (default /tmp/vmemfs-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
MNT=${MNT:-/tmp/vmemfs-demo}
GUESTS=build/guests
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target vmemfs
python3 tools/guest/guest.py prepare --root "$GUESTS"
# The snapshots are all the demo needs; stop the guests.
for g in l4 l5; do python3 tools/guest/guest.py stop --dir "$GUESTS/$g" >/dev/null; done

mkdir -p "$MNT"
fusermount3 -u -q "$MNT" 2>/dev/null || true
build/src/vmemfs "vm5=$GUESTS/l5/core.elf" "vm4=$GUESTS/l4/raw.mem" "$MNT"
# `|| true`: a pipeline such as strings | grep -m1 ends its writer early (SIGPIPE).
show() { echo; echo "\$ $*"; eval "$@" || true; }
show ls -l "$MNT" "$MNT/vm5" "$MNT/vm5/vcpu/0" "| head -12"
show cat "$MNT/vm5/info"
show cat "$MNT/vm5/vcpu/0/cr3"
show xxd -s 0x1000 -l 64 "$MNT/vm4/pmem"
show "strings $MNT/vm4/pmem | grep -m1 'Linux version'"
# kmem: file offset = kernel virtual address mod 2^57 (5-level paging) or 2^48 (4-level).
banner=$(awk '$3 == "linux_banner" {print $1}' "$GUESTS/l5/truth/kallsyms.txt")
show "dd if=$MNT/vm5/kmem bs=1 skip=\$((0x$banner & (1<<57)-1)) count=120 status=none; echo"
# Linux from memory alone, even in a raw snapshot without registers.
show "ls $MNT/vm4/proc | head -5; ls $MNT/vm4/proc | wc -l"
show cat "$MNT/vm4/proc/1/status"
show head -4 "$MNT/vm4/proc/1/maps"
show "grep -m1 ' T start_kernel' $MNT/vm4/symbols/kallsyms"
show "head -c 100 $MNT/vm4/symbols/kernel/linux_banner; echo"
echo
echo "Mounted at $MNT. Unmount with: fusermount3 -u $MNT"
