#!/usr/bin/env bash
# Cost follows the work, not the VM's size: the same guest with 256 MiB and with 4 GiB of RAM,
# each figure against the small guest's in the same run (and the GDB stub against QMP).
#   1. snapshot, cold page cache: mount + `ls proc` + every process's comm, best of 3;
#   2. the daemon's RssFile right after mounting the 4 GiB snapshot, and after step 1's work;
#   3. live (qemu:, the running guests): mount + `ls proc` + every comm, best of 3;
#   4. the GDB stub (gdb:unix:), 256 MiB guest: the same, once (every read stops the VM).
# Usage: bench/scale_bench.sh [--build DIR] [--work DIR] [--procs N]
# Boots two guests (256 MiB and 4 GiB, N extra processes, default 300) the first time and
# snapshots them; later runs reuse both. Needs root. Stops its guests and unmounts on exit.
set -euo pipefail
readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO}/build-release"
WORK=/tmp/vmemfs-bench/scale
PROCS=300
while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --procs) PROCS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
VMEMFS="${BUILD}/src/vmemfs"
GUEST_PY="${REPO}/tools/guest/guest.py"
MNT="${WORK}/mnt"
mkdir -p "$MNT"

daemon=""
cleanup() {
  fusermount3 -u -q "$MNT" 2>/dev/null || true
  [[ -n "$daemon" ]] && wait "$daemon" 2>/dev/null || true
  for g in small big; do python3 "$GUEST_PY" stop --dir "${WORK}/$g" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

now() { date +%s%N; }
secs() { echo "scale=3; $1 / 1000000000" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

# Both guests: booted (kept running for the live part) and snapshotted once.
declare -A MEM=([small]=256 [big]=4096)
for g in small big; do
  dir="${WORK}/$g"
  if ! python3 "$GUEST_PY" cont --dir "$dir" >/dev/null 2>&1; then
    python3 "$GUEST_PY" boot --dir "$dir" --cpu qemu64 --mem "${MEM[$g]}" --extra "$PROCS" \
      --kernel-dir "${WORK}/image" --timeout 600 >&2
  fi
  [[ -s "${dir}/raw.mem" ]] || python3 "$GUEST_PY" snapshot --dir "$dir" >&2
done

mount_fg() {  # SOURCE: mounts in the background (-f), sets $daemon, waits for the mount
  "$VMEMFS" -f "g=$1" "$MNT" 2>/dev/null &
  daemon=$!
  for _ in $(seq 1 1000); do mountpoint -q "$MNT" && return 0; sleep 0.01; done
  echo "mount of $1 did not come up" >&2
  exit 1
}
unmount() { fusermount3 -u "$MNT"; wait "$daemon" 2>/dev/null || true; daemon=""; }
work() { ls "$MNT/g/proc" >/dev/null && cat "$MNT"/g/proc/[0-9]*/comm >/dev/null; }
rss_file() { awk '/^RssFile:/ {print $2}' "/proc/$daemon/status"; }

# One timed mount + work; prints nanoseconds. $1: SOURCE, $2: drop the page cache first.
timed() {
  [[ "$2" == cold ]] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  local t0 t1
  t0=$(now)
  mount_fg "$1"
  work
  t1=$(now)
  unmount
  echo $((t1 - t0))
}

best_of_3() {
  local best=999999999999999 t
  for _ in 1 2 3; do
    t=$(timed "$1" "$2")
    ((t < best)) && best=$t
  done
  echo "$best"
}

printf '%-58s %10s %10s %7s\n' "figure" "256 MiB" "4 GiB" "ratio"

# 1. Snapshots, cold.
s=$(best_of_3 "${WORK}/small/raw.mem" cold)
b=$(best_of_3 "${WORK}/big/raw.mem" cold)
printf '%-58s %9ss %9ss %6sx\n' "snapshot, cold: mount + ls proc + every comm" \
  "$(secs "$s")" "$(secs "$b")" "$(ratio "$b" "$s")"

# 2. RssFile of the daemon on the 4 GiB snapshot (the file is 6 GiB: RAM above 4 GiB).
sync
echo 3 >/proc/sys/vm/drop_caches
mount_fg "${WORK}/big/raw.mem"
sleep 0.2
after_mount=$(rss_file)
work
after_work=$(rss_file)
unmount
printf '%-58s %10s %9sK\n' "4 GiB snapshot: daemon RssFile right after mount" "" "$after_mount"
printf '%-58s %10s %9sK\n' "4 GiB snapshot: RssFile after ls proc + every comm" "" "$after_work"

# 3. Live guests through QMP.
s=$(best_of_3 "qemu:${WORK}/small/qmp.sock" warm)
b=$(best_of_3 "qemu:${WORK}/big/qmp.sock" warm)
printf '%-58s %9ss %9ss %6sx\n' "live (qemu:): mount + ls proc + every comm" \
  "$(secs "$s")" "$(secs "$b")" "$(ratio "$b" "$s")"
live_small=$s

# 4. The GDB stub, 256 MiB guest, against QMP on the same guest.
g=$(timed "gdb:unix:${WORK}/small/gdb.sock" warm)
printf '%-58s %9ss %10s %6sx\n' "GDB stub: mount + ls proc + every comm (vs qemu:)" \
  "$(secs "$g")" "" "$(ratio "$g" "$live_small")"
