#!/usr/bin/env bash
# Live-source benchmarks in one command: boots a test guest (RAM in a shared file) and a second
# QEMU with private RAM (memory-backend-ram), snapshots the first, runs live_bench (driver
# ReadPhys: snapshot vs QEMU shm / process_vm_readv / /proc/PID/mem / gdbstub), then reads
# vmemfs's pmem through FUSE for snapshot / QEMU shm / QEMU private RAM, and stops both guests.
#
#   bench/live_bench.sh [--build DIR] [--reps N] [--count N] [--no-fuse] [--no-gdb]
#
# Every figure is printed next to the snapshot driver's, measured in the same run, as a ratio.
# Needs root (QEMU, FUSE mounts, ptrace of QEMU), fusermount3, dd, taskset; see README.md.
set -euo pipefail

readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO}/build-release"
REPS=3
COUNT=20000
FUSE=1
GDB_ARG=()
WORK="${VMEMFS_BENCH_WORK:-/tmp/vmemfs-bench}"
readonly LIVE="${WORK}/live"
readonly SHM="${LIVE}/shm"          # guest.py guest: RAM in SHM/ram (share=on)
readonly PRIV="${LIVE}/private"     # same kernel and initramfs, RAM private to QEMU
readonly IMAGE="${WORK}/linux/image"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --count) COUNT="$2"; shift ;;
    --no-fuse) FUSE=0 ;;
    --no-gdb) GDB_ARG=(--no-gdb) ;;
    *) usage ;;
  esac
  shift
done
export LC_ALL=C
die() { echo "live_bench: $*" >&2; exit 1; }
log() { echo "live_bench: $*" >&2; }

cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVMEMFS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target live_bench vmemfs pread_lat >/dev/null
readonly VMEMFS="${BUILD}/src/vmemfs" PREAD="${BUILD}/bench/pread_lat"

# --- Guests and mounts: everything started here is stopped by the trap. ---
declare -A DAEMON_PID=()
stop_fs() {
  local mnt="$1" pid="${DAEMON_PID[$1]:-}"
  if grep -qs " ${mnt} " /proc/mounts; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
  fi
  if [[ -n "$pid" ]]; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill "$pid" 2>/dev/null && sleep 0.2 && kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  unset "DAEMON_PID[$mnt]"
  rmdir "$mnt" 2>/dev/null || true
}
cleanup() {
  local mnt
  for mnt in "${!DAEMON_PID[@]}"; do stop_fs "$mnt"; done
  python3 "${REPO}/tools/guest/guest.py" stop --dir "$SHM" >/dev/null 2>&1 || true
  python3 "${REPO}/tools/guest/guest.py" stop --dir "$PRIV" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The guest with shared RAM, and its snapshot (the baseline's file).
mkdir -p "$LIVE" "${LIVE}/mnt"
python3 "${REPO}/tools/guest/guest.py" stop --dir "$SHM" >/dev/null 2>&1 || true
python3 "${REPO}/tools/guest/guest.py" boot --dir "$SHM" --cpu qemu64 --kernel-dir "$IMAGE" >&2
python3 "${REPO}/tools/guest/guest.py" snapshot --dir "$SHM" >&2

# The private-RAM QEMU: guest.py's own command line with memory-backend-ram instead of the
# shared file and every path moved to PRIV (guest.py stop works on it: qemu.pid + qmp.sock).
boot_private() {
  python3 "${REPO}/tools/guest/guest.py" stop --dir "$PRIV" >/dev/null 2>&1 || true
  rm -rf "$PRIV" && mkdir -p "$PRIV"
  local -a argv
  mapfile -t argv < <(python3 - "$SHM" "$PRIV" <<'EOF'
import json, sys
shm, priv = sys.argv[1], sys.argv[2]
for a in json.load(open(shm + '/guest.json'))['argv']:
    if a.startswith('memory-backend-file,'):
        a = 'memory-backend-ram,id=ram,size=256M'
    print(a.replace(shm, priv))
EOF
)
  "${argv[@]}" 2>"${PRIV}/qemu.err" || die "private QEMU did not start: $(cat "${PRIV}/qemu.err")"
  for _ in $(seq 600); do
    grep -qs '==VMEMFS-READY==' "${PRIV}/console.log" && return 0
    sleep 0.1
  done
  die "private QEMU did not boot (see ${PRIV}/console.log)"
}
if ((FUSE)); then
  log "booting the private-RAM QEMU in ${PRIV}"
  boot_private
fi

echo "== live_bench: Driver::ReadPhys per source vs the snapshot driver on raw.mem =="
"${BUILD}/bench/live_bench" --dir "$SHM" "${GDB_ARG[@]}" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true
((FUSE)) || exit 0

# --- pmem through a FUSE mount of vmemfs (daemon and reader on CPU 0, fresh mount each) ---
dd_parse() {
  awk '/copied/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s,") printf "%.0f\n", $1 / $i / 1e6 }'
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
median() { sort -g | awk 'NF { v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
declare -A SAMPLES=()
add() { SAMPLES["$1/$2"]+="$3"$'\n'; }

# measure KIND SOURCE: one fresh mount; O_DIRECT 1 MiB stream of all pmem, then 4-byte preads.
measure() {
  local kind="$1" source="$2" mnt file line
  mnt="$(mktemp -d "${LIVE}/mnt/${kind}.XXXX")"
  taskset -c 0 "$VMEMFS" -f "bench=${source}" "$mnt" >"${LIVE}/${kind}.log" 2>&1 &
  DAEMON_PID[$mnt]=$!
  file="${mnt}/bench/pmem"
  for _ in $(seq 300); do
    grep -qs " ${mnt} " /proc/mounts && [[ -e "$file" ]] && break
    kill -0 "${DAEMON_PID[$mnt]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -e "$file" ]] || { cat "${LIVE}/${kind}.log" >&2; die "$kind did not mount"; }
  ((rep > 1)) || log "$kind: $(grep -E '^(ram-access|format):' "${mnt}/bench/info" | head -1)"
  add "$kind" seq "$(taskset -c 0 dd if="$file" of=/dev/null bs=1M iflag=direct 2>&1 | dd_parse)"
  line="$(taskset -c 0 "$PREAD" "$file" "$COUNT" 4)"
  add "$kind" p50 "$(field "$line" p50_us)"
  add "$kind" mean "$(field "$line" us_per_op)"
  stop_fs "$mnt"
}

readonly KINDS=(snapshot shm private)
declare -A SOURCE=([snapshot]="${SHM}/raw.mem" [shm]="qemu:${SHM}/qmp.sock"
                   [private]="qemu:${PRIV}/qmp.sock")
cat "${SHM}/raw.mem" >/dev/null  # the baseline reads its file from RAM, not disk
for rep in $(seq "$REPS"); do
  log "FUSE round ${rep}/${REPS}"
  # Rotate which source goes first, so no source always runs right after a boot or another.
  for i in "${!KINDS[@]}"; do
    kind="${KINDS[$(((i + rep) % ${#KINDS[@]}))]}"
    measure "$kind" "${SOURCE[$kind]}"
  done
done

echo
echo "== FUSE: vmemfs pmem per source vs the snapshot source (cpu0, medians of ${REPS} mounts) =="
printf '%-9s %12s %7s %12s %7s %12s %7s\n' source "seq MB/s" ratio "4B p50 us" ratio \
  "4B mean us" ratio
base_seq="$(median <<<"${SAMPLES[snapshot/seq]}")"
base_p50="$(median <<<"${SAMPLES[snapshot/p50]}")"
base_mean="$(median <<<"${SAMPLES[snapshot/mean]}")"
for kind in "${KINDS[@]}"; do
  s="$(median <<<"${SAMPLES[$kind/seq]}")"
  p="$(median <<<"${SAMPLES[$kind/p50]}")"
  m="$(median <<<"${SAMPLES[$kind/mean]}")"
  # Rates: measured / baseline; latencies: baseline / measured (so > 1 is always faster).
  printf '%-9s %12s %7.2f %12s %7.2f %12s %7.2f\n' "$kind" "$s" "$(bc -l <<<"$s / $base_seq")" \
    "$p" "$(bc -l <<<"$base_p50 / $p")" "$m" "$(bc -l <<<"$base_mean / $m")"
done
echo "ratios are rate vs the snapshot source (latency ratios inverted): higher is better;"
echo "targets: private RAM (process_vm_readv) >= 0.5, shm (mmap) >= 0.8"
