#!/usr/bin/env bash
# What a remote libvirt host costs: one test domain on a second, test-only libvirtd
# (tools/libvirt/start-second-libvirtd.sh, plain TCP on 127.0.0.1), its pmem read through vmemfs
# three ways in one mount:
#   shm         libvirt over the daemon's local socket, access=auto: QEMU's RAM on this host
#   local-peek  the same local connection, access=peek: virDomainMemoryPeek over a unix socket
#               (the BASELINE: libvirt's peek without a network)
#   tcp-peek    qemu+tcp://127.0.0.1:PORT/system: what every remote host's domain gets
# For each: sequential MB/s (dd, O_DIRECT, 1 MiB reads of MB MiB) and the latency of 4-byte
# random reads (bench/pread_lat, O_DIRECT), each printed with its ratio to the baseline.
#
#   bench/libvirt_fleet_bench.sh [--build DIR] [--mb N] [--count N]
#
# Needs root, the machine's libvirt packages, the test guest image (build/guests/image, see
# tools/guest/guest.py) and a built vmemfs and pread_lat. Stops what it starts.
set -euo pipefail

readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO}/build"
MB=32
COUNT=2000
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --mb) MB="$2"; shift ;;
    --count) COUNT="$2"; shift ;;
    *) usage ;;
  esac
  shift
done
export LC_ALL=C PATH=$PATH:/usr/sbin
log() { echo "libvirt_fleet_bench: $*" >&2; }
readonly VMEMFS="$BUILD/src/vmemfs" PREAD="$BUILD/bench/pread_lat"
[[ -x $VMEMFS && -x $PREAD ]] || { log "build vmemfs and pread_lat in $BUILD first"; exit 1; }

readonly WORK=$(mktemp -d /tmp/vmemfs-fleet-bench.XXXXXX)
readonly PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
readonly DOM=vmemfs-bench-remote MNT=$WORK/mnt
readonly TCP="qemu+tcp://127.0.0.1:$PORT/system" UNIX="qemu+unix:///system?socket=$WORK/d/run/libvirt-sock"
cleanup() {
  fusermount3 -u "$MNT" 2>/dev/null || true
  "$REPO/tools/libvirt/stop-second-libvirtd.sh" "$WORK/d" "$PORT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$REPO/tools/libvirt/start-second-libvirtd.sh" "$WORK/d" "$PORT" >/dev/null
VMEMFS_BOOT_WAIT=0 VMEMFS_LIBVIRT_URI=$TCP VMEMFS_LIBVIRT_RUN=$WORK/d/run \
  VMEMFS_LIBVIRT_DIR=$WORK/guests VMEMFS_GUEST_IMAGE=${VMEMFS_GUEST_IMAGE:-$REPO/build/guests/image} \
  "$REPO/tools/libvirt/define-test-domain.sh" "$DOM" qemu64 >/dev/null 2>&1
mkdir -p "$MNT"
"$VMEMFS" "shm=libvirt:$DOM?uri=$UNIX" "local-peek=libvirt:$DOM?uri=$UNIX&access=peek" \
  "tcp-peek=libvirt:$DOM?uri=$TCP" "$MNT"
for how in shm local-peek tcp-peek; do
  log "$how: $(grep -E '^(read_path|access):' "$MNT/$how/info" | tr '\n' ' ')"
done

# MB/s of dd's own count (it prints bytes and seconds on its last line).
mbps() {
  dd if="$MNT/$1/pmem" of=/dev/null bs=1M count="$MB" iflag=direct 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) s = $(i - 1); print $1 / s / 1e6 }'
}
lat() { "$PREAD" "$MNT/$1/pmem" "$COUNT" 4 | sed -E 's/.*us_per_op=([0-9.]+).*/\1/'; }

declare -A MBPS LAT
for how in local-peek tcp-peek shm; do
  MBPS[$how]=$(mbps "$how")
  LAT[$how]=$(lat "$how")
done
printf '%-11s %10s %8s %14s %8s\n' path MB/s ratio 4B-read-us ratio
for how in local-peek tcp-peek shm; do
  awk -v h="$how" -v m="${MBPS[$how]}" -v l="${LAT[$how]}" -v bm="${MBPS[local-peek]}" \
    -v bl="${LAT[local-peek]}" 'BEGIN { printf "%-11s %10.1f %7.2fx %14.1f %7.2fx\n", h, m, m / bm, l, l / bl }'
done
echo "(ratios against local-peek: virDomainMemoryPeek through the same libvirtd's unix socket)"
