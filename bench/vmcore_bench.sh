#!/usr/bin/env bash
# vmcore: MOUNT/<vm>/vmcore against its baselines, measured in the same run on a real test guest.
#
#   bench/vmcore_bench.sh [--build DIR] [--guests DIR] [--guest l4|l5] [--reps N] [--no-live]
#
# * Sequential read (dd bs=1M iflag=direct): vmcore vs pmem of the same mount, over the same
#   amount of RAM (pmem from 0 for ram-bytes, vmcore whole). Target: >= 0.80.
# * crash and drgn start-up (open the dump with the debug kernel, print the release, quit) on
#   vmcore vs the same tool on a copy of that vmcore written to disk (cp, so in the page
#   cache). Target: <= 1.20.
# From the guest's raw snapshot and, unless --no-live or the guest is not running, from the
# running guest (qemu:). Figures are medians over N fresh mounts (5 alternating reads of each
# file per mount); the ratio is the median of the ratios of pairs measured side by side. Needs the test guests
# (default build/guests: tools/guest/guest.py prepare, as ctest does) and their vmlinux
# (tools/guest/debug-kernel.sh).
set -euo pipefail

readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO}/build"
GUESTS=""
GUEST="l5"
REPS=5
LIVE=1
WORK="${VMEMFS_BENCH_WORK:-/tmp/vmemfs-bench}"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --guests) GUESTS="$2"; shift ;;
    --guest) GUEST="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --no-live) LIVE=0 ;;
    *) usage ;;
  esac
  shift
done
GUESTS="${GUESTS:-${VMEMFS_GUESTS:-${REPO}/build/guests}}"
readonly VMEMFS="${BUILD}/src/vmemfs" DIR="${GUESTS}/${GUEST}" VMLINUX="${GUESTS}/image/vmlinux"
export LC_ALL=C

die() { echo "vmcore_bench: $*" >&2; exit 1; }
[[ -x "$VMEMFS" ]] || die "missing $VMEMFS (build it)"
[[ -f "${DIR}/raw.mem" ]] || die "no ${DIR}/raw.mem (tools/guest/guest.py prepare --root ${GUESTS})"
[[ -f "$VMLINUX" ]] || die "no $VMLINUX (tools/guest/debug-kernel.sh ${GUESTS}/image)"
for t in crash drgn dd; do command -v "$t" >/dev/null || die "$t not found (tools/install-deps.sh)"; done
mkdir -p "${WORK}/mnt"

MNT=""
PID=""
stop() {
  [[ -n "$MNT" ]] || return 0
  fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rmdir "$MNT" 2>/dev/null || true
  MNT=""
}
trap 'stop; rm -f "${WORK}/vmcore.copy" "${WORK}/drgn.py"' EXIT
trap 'exit 130' INT TERM

# start SOURCE: a fresh mount of SOURCE as g; waits until its vmcore is there.
start() {
  MNT="$(mktemp -d "${WORK}/mnt/vmcore.XXXX")"
  "$VMEMFS" -f "g=$1" "$MNT" >"${WORK}/vmcore_bench.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do
    [[ -e "${MNT}/g/vmcore" ]] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "${WORK}/vmcore_bench.log" >&2
  die "no vmcore in the mount of $1"
}

mbps() {  # mbps FILE [DD_ARGS...]: 1 MiB O_DIRECT reads to /dev/null, MB/s
  local file="$1"; shift
  dd if="$file" of=/dev/null bs=1M iflag=direct "$@" 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s,") printf "%.0f\n", $1 / $i / 1e6 }'
}
seconds() {  # seconds CMD...: wall time of CMD, output discarded; fails if CMD fails
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || die "failed: $*"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
crash_start() { printf 'sys\nquit\n' | crash -s "$VMLINUX" "$1"; }
cat >"${WORK}/drgn.py" <<'EOF'
print(prog["init_uts_ns"].name.release.string_().decode())
EOF
drgn_start() { drgn -q -c "$1" -s "$VMLINUX" "${WORK}/drgn.py"; }
median() { sort -g | awk '{ v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
# row LABEL TARGET BASELINES VALUES: medians of both, and the median of the ratios of pairs
# measured side by side (index by index): on a shared machine the load moves both of a pair
# alike, so their ratio is steadier than the ratio of the two medians.
row() {
  local label="$1" target="$2" base="$3" value="$4"
  printf '%-44s %9s %9s %7s   %s\n' "$label" "$(median <<<"$base")" "$(median <<<"$value")" \
    "$(paste <(echo "$base") <(echo "$value") | awk '{ printf "%.4f\n", $2 / $1 }' | median |
       awk '{ printf "%.2f", $1 }')" "$target"
}

# measure LABEL SOURCE: every figure for one source.
measure() {
  local label="$1" source="$2" ram_mib
  local -a pmem=() core=() crash_copy=() crash_fuse=() drgn_copy=() drgn_fuse=()
  # Untimed: the copy, and one run of each tool on it, so that the 590 MB vmlinux is in the
  # page cache before the first timed run (else the first vmcore run pays for reading it).
  start "$source"
  cp "${MNT}/g/vmcore" "${WORK}/vmcore.copy"
  stop
  crash_start "${WORK}/vmcore.copy" >/dev/null 2>&1 || die "crash failed on the copy"
  drgn_start "${WORK}/vmcore.copy" >/dev/null 2>&1 || die "drgn failed on the copy"
  for ((i = 0; i < REPS; i++)); do
    start "$source"
    ram_mib=$(($(sed -n 's/^ram-bytes: \([0-9]*\).*/\1/p' "${MNT}/g/info") >> 20))
    # A pass takes 30-300 ms here, less than the noise of a shared machine: 5 passes each,
    # alternating, so that both files see the same moments.
    for ((j = 0; j < 5; j++)); do
      pmem+=("$(mbps "${MNT}/g/pmem" count="$ram_mib")")
      core+=("$(mbps "${MNT}/g/vmcore")")
    done
    stop
    # The tools: on a fresh mount (nothing of vmcore in its page cache) and on the copy, the
    # order swapped every round so that neither always runs first.
    if ((i % 2)); then
      crash_copy+=("$(seconds crash_start "${WORK}/vmcore.copy")")
      drgn_copy+=("$(seconds drgn_start "${WORK}/vmcore.copy")")
    fi
    start "$source"
    crash_fuse+=("$(seconds crash_start "${MNT}/g/vmcore")")
    drgn_fuse+=("$(seconds drgn_start "${MNT}/g/vmcore")")
    stop
    if ! ((i % 2)); then
      crash_copy+=("$(seconds crash_start "${WORK}/vmcore.copy")")
      drgn_copy+=("$(seconds drgn_start "${WORK}/vmcore.copy")")
    fi
  done
  rm -f "${WORK}/vmcore.copy"
  echo
  echo "${label}: ${source} (${ram_mib} MiB RAM), ${REPS} fresh mounts"
  printf '%-44s %9s %9s %7s   %s\n' figure baseline vmcore ratio "target (ratio)"
  lines() { printf '%s\n' "$@"; }
  row "seq read O_DIRECT, MB/s (baseline: pmem)" ">= 0.80" "$(lines "${pmem[@]}")" \
    "$(lines "${core[@]}")"
  row "crash start-up, s (baseline: copy on disk)" "<= 1.20" "$(lines "${crash_copy[@]}")" \
    "$(lines "${crash_fuse[@]}")"
  row "drgn start-up, s (baseline: copy on disk)" "<= 1.20" "$(lines "${drgn_copy[@]}")" \
    "$(lines "${drgn_fuse[@]}")"
}

echo "vmcore_bench: guest ${GUEST}, crash $(crash --version 2>/dev/null | awk '/^crash / { print $2; exit }'), drgn $(drgn --version 2>&1 | awk '{ print $2; exit }')"
measure "snapshot" "${DIR}/raw.mem"
if ((LIVE)) && [[ -S "${DIR}/qmp.sock" ]] && kill -0 "$(cat "${DIR}/qemu.pid" 2>/dev/null)" 2>/dev/null; then
  measure "live" "qemu:${DIR}/qmp.sock"
fi
