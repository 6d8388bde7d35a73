#!/usr/bin/env bash
# Filesystem benchmarks: vmemfs's pmem against fuse_baseline's mem on the same snapshot file.
#
#   bench/fs_bench.sh [--build DIR] [--snapshot FILE] [--reps N] [--count N] [--no-rss]
#                     [--self-test]
#
# Every figure is printed next to the baseline measured in the same run and as a ratio.
# --self-test mounts fuse_baseline in vmemfs's place (an A/A run: ratios show the noise).
# Needs root or user_allow_other-free FUSE mounting, fusermount3, dd; see README.md.
set -euo pipefail

readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REPO}/build"
SNAPSHOT=""
REPS=5
COUNT=20000
RSS=1
SELF_TEST=0
WORK="${VMEMFS_BENCH_WORK:-/tmp/vmemfs-bench}"
# Extra options for both servers (e.g. "-o max_threads=4"); the default is each one's defaults.
FUSE_OPTS=(${VMEMFS_BENCH_FUSE_OPTS:-})

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

while (($#)); do
  case "$1" in
    --build) BUILD="$2"; shift ;;
    --snapshot) SNAPSHOT="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --count) COUNT="$2"; shift ;;
    --no-rss) RSS=0 ;;
    --self-test) SELF_TEST=1 ;;
    *) usage ;;
  esac
  shift
done

readonly VMEMFS="${BUILD}/src/vmemfs"
readonly BASELINE="${BUILD}/bench/fuse_baseline"
readonly PREAD="${BUILD}/bench/pread_lat"
export LC_ALL=C

die() { echo "fs_bench: $*" >&2; exit 1; }
log() { echo "fs_bench: $*" >&2; }

for tool in "$BASELINE" "$PREAD"; do [[ -x "$tool" ]] || die "missing $tool (build first)"; done
((SELF_TEST)) || [[ -x "$VMEMFS" ]] || die "missing $VMEMFS (build it, or use --self-test)"
command -v fusermount3 >/dev/null || die "fusermount3 not found (apt-get install fuse3)"

# --- Daemons and mounts: everything started here is stopped by the trap. ---
declare -A DAEMON_PID=()  # mountpoint -> pid

stop_fs() {
  local mnt="$1" pid="${DAEMON_PID[$1]:-}"
  if grep -qs " ${mnt} " /proc/mounts; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
  fi
  if [[ -n "$pid" ]]; then
    # Unmounting makes a FUSE daemon exit; give it a moment, then insist.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill "$pid" 2>/dev/null && sleep 0.2 && kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  unset "DAEMON_PID[$mnt]"
}

cleanup() {
  local mnt
  for mnt in "${!DAEMON_PID[@]}"; do stop_fs "$mnt"; done
  rm -rf "${WORK}/mnt"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_fs KIND SNAPSHOT [CPU]: mounts a fresh instance (all its threads on CPU if given) and
# sets FS_FILE (the file to read) and FS_MNT. KIND is "baseline" or "vmemfs" (the baseline
# again under --self-test).
start_fs() {
  local kind="$1" snap="$2" mnt
  local -a pin=()
  [[ -n "${3:-}" ]] && pin=(taskset -c "$3")
  mnt="$(mktemp -d "${WORK}/mnt/${kind}.XXXX")"
  local logfile="${WORK}/${kind}.log"
  if [[ "$kind" == baseline || "$SELF_TEST" == 1 ]]; then
    "${pin[@]}" "$BASELINE" "$snap" -f "${FUSE_OPTS[@]}" "$mnt" >"$logfile" 2>&1 &
    FS_FILE="${mnt}/mem"
  else
    # An explicit NAME so the path does not depend on how vmemfs names sources.
    "${pin[@]}" "$VMEMFS" -f "${FUSE_OPTS[@]}" "bench=${snap}" "$mnt" >"$logfile" 2>&1 &
    FS_FILE="${mnt}/bench/pmem"
  fi
  DAEMON_PID[$mnt]=$!
  FS_MNT="$mnt"
  for _ in $(seq 300); do
    if grep -qs " ${mnt} " /proc/mounts && [[ -e "$FS_FILE" ]]; then return 0; fi
    kill -0 "${DAEMON_PID[$mnt]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$logfile" >&2
  die "$kind did not mount $FS_FILE"
}

# --- Measurements ---
# dd_mbps FILE [DD_ARGS...]: streams FILE to /dev/null with 1 MiB reads, prints MB/s (10^6).
dd_mbps() {
  local file="$1"; shift
  dd if="$file" of=/dev/null bs=1M "$@" 2>&1 | dd_parse
}
# dd's summary line on stdin -> MB/s.
dd_parse() {
  awk '/copied/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "s,") printf "%.0f\n", $1 / $i / 1e6 }'
}

# field LINE KEY: the value of KEY=value in LINE.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# proc_kib PID KEY: a "KEY: n kB" line of /proc/PID/status, in KiB.
proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

median() { sort -g | awk 'NF { v[++n] = $1 } END { print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

declare -A SAMPLES=()  # "kind/figure" -> newline-separated samples
add() { SAMPLES["$1/$2"]+="$3"$'\n'; }

# One fresh mount of KIND, scheduled freely: streams, then random preads.
measure_free() {
  local kind="$1" snap="$2" line
  start_fs "$kind" "$snap"
  add "$kind" seq_direct "$(dd_mbps "$FS_FILE" iflag=direct)"
  # Direct reads leave no page cache behind, so this is still a cold buffered stream.
  add "$kind" seq_buffered "$(dd_mbps "$FS_FILE")"
  line="$("$PREAD" "$FS_FILE" "$COUNT" 4)"
  add "$kind" pread_p50 "$(field "$line" p50_us)"
  add "$kind" pread_mean "$(field "$line" us_per_op)"
  stop_fs "$FS_MNT"
}

# One fresh mount of KIND with the daemon and the reader on CPU 0. A small read's latency is
# dominated by where the scheduler wakes the daemon's thread: on this kind of VM a wake-up on
# the other CPU costs ~40 us and the same CPU ~4 us, and which one happens changes from run to
# run. On one CPU the figure is the daemon's work per request, the thing vmemfs controls.
measure_pinned() {
  local kind="$1" snap="$2" line
  start_fs "$kind" "$snap" 0
  add "$kind" pin_seq_direct "$(taskset -c 0 dd if="$FS_FILE" of=/dev/null bs=1M iflag=direct \
    2>&1 | dd_parse)"
  line="$(taskset -c 0 "$PREAD" "$FS_FILE" "$COUNT" 4)"
  add "$kind" pin_pread_p50 "$(field "$line" p50_us)"
  add "$kind" pin_pread_mean "$(field "$line" us_per_op)"
  stop_fs "$FS_MNT"
}

measure_once() {
  measure_free "$@"
  measure_pinned "$@"
}

# ensure_random_file PATH MIB: a file of random bytes, made once and reused.
ensure_random_file() {
  local path="$1" mib="$2"
  if [[ ! -f "$path" || "$(stat -c %s "$path")" != "$((mib << 20))" ]]; then
    log "making ${mib} MiB of random bytes in ${path}"
    head -c "$((mib << 20))" /dev/urandom >"${path}.tmp" && mv "${path}.tmp" "$path"
  fi
}

# Both servers read the snapshot through its mapping; keep it in the page cache so the disk
# is not what is measured.
warm() { cat "$1" >/dev/null; }

# --- Report ---
row() {  # row LABEL BASELINE VMEMFS TARGET
  local ratio
  ratio="$(awk -v b="$2" -v v="$3" 'BEGIN { if (b > 0) printf "%.2f", v / b; else print "-" }')"
  printf '%-34s %12s %12s %8s   %s\n' "$1" "$2" "$3" "$ratio" "$4"
}

fig() { median <<<"${SAMPLES[$1/$2]}"; }

report_speed() {
  local name="vmemfs"
  ((SELF_TEST)) && name="baseline'"
  echo
  echo "Snapshot: $1 ($(($(stat -c %s "$1") >> 20)) MiB), medians of ${REPS} fresh mounts each"
  printf '%-34s %12s %12s %8s   %s\n' figure baseline "$name" ratio "target (ratio)"
  row "free: seq read O_DIRECT (MB/s)" "$(fig baseline seq_direct)" \
    "$(fig vmemfs seq_direct)" ">= 0.80"
  row "free: seq read buffered (MB/s)" "$(fig baseline seq_buffered)" \
    "$(fig vmemfs seq_buffered)" ">= 0.80"
  row "free: 4-byte pread p50 (us)" "$(fig baseline pread_p50)" "$(fig vmemfs pread_p50)" \
    "<= 1.30 (noisy)"
  row "free: 4-byte pread mean (us)" "$(fig baseline pread_mean)" "$(fig vmemfs pread_mean)" \
    "<= 1.30 (noisy)"
  row "cpu0: seq read O_DIRECT (MB/s)" "$(fig baseline pin_seq_direct)" \
    "$(fig vmemfs pin_seq_direct)" ">= 0.80"
  row "cpu0: 4-byte pread p50 (us)" "$(fig baseline pin_pread_p50)" \
    "$(fig vmemfs pin_pread_p50)" "<= 1.30"
  row "cpu0: 4-byte pread mean (us)" "$(fig baseline pin_pread_mean)" \
    "$(fig vmemfs pin_pread_mean)" "<= 1.30"
}

# rss_after_stream KIND SNAPSHOT: mounts, streams the whole file both ways, sets RSS_MIB to the
# daemon's (VmHWM RssAnon RssFile) in MiB. Not run in a subshell, so the trap knows the daemon.
rss_after_stream() {
  start_fs "$1" "$2"
  dd_mbps "$FS_FILE" iflag=direct >/dev/null
  dd_mbps "$FS_FILE" >/dev/null
  local pid="${DAEMON_PID[$FS_MNT]}" key
  RSS_MIB=()
  for key in VmHWM RssAnon RssFile; do RSS_MIB+=("$(($(proc_kib "$pid" "$key") >> 10))"); done
  stop_fs "$FS_MNT"
}

report_rss() {
  local name="vmemfs" mib snap b v first=""
  ((SELF_TEST)) && name="baseline'"
  echo
  echo "Daemon memory after streaming the whole snapshot (MiB: VmHWM / RssAnon / RssFile)"
  printf '%-12s %22s %22s %14s   %s\n' snapshot baseline "$name" "VmHWM ratio" \
    "target: ${name} VmHWM <= 64 MiB at every size"
  for mib in 256 2048; do
    snap="${WORK}/random-${mib}m.mem"
    ensure_random_file "$snap" "$mib"
    warm "$snap"
    rss_after_stream baseline "$snap"
    b=("${RSS_MIB[@]}")
    rss_after_stream vmemfs "$snap"
    v=("${RSS_MIB[@]}")
    printf '%-12s %22s %22s %14s\n' "${mib} MiB" "${b[0]} / ${b[1]} / ${b[2]}" \
      "${v[0]} / ${v[1]} / ${v[2]}" \
      "$(awk -v b="${b[0]}" -v v="${v[0]}" 'BEGIN { printf "%.2f", (b > 0 ? v / b : 0) }')"
    [[ -n "$first" ]] || first="${v[0]}"
  done
  echo "${name} VmHWM growth, 2048 vs 256 MiB snapshot: $(awk -v a="$first" -v b="${v[0]}" \
    'BEGIN { printf "%.2fx", (a > 0 ? b / a : 0) }') (size-independent: ~1.0x; the file grew 8x)"
}

main() {
  mkdir -p "${WORK}/mnt"
  if [[ -z "$SNAPSHOT" ]]; then
    SNAPSHOT=/tmp/vmemfs-guests/l4/raw.mem
    if [[ ! -f "$SNAPSHOT" ]]; then
      SNAPSHOT="${WORK}/random-1024m.mem"
      ensure_random_file "$SNAPSHOT" 1024
    fi
  fi
  [[ -f "$SNAPSHOT" ]] || die "no snapshot file $SNAPSHOT"
  warm "$SNAPSHOT"
  local rep
  for ((rep = 1; rep <= REPS; rep++)); do
    # Alternate which server goes first so drift in the machine's load hits both alike.
    if ((rep % 2)); then
      measure_once baseline "$SNAPSHOT"; measure_once vmemfs "$SNAPSHOT"
    else
      measure_once vmemfs "$SNAPSHOT"; measure_once baseline "$SNAPSHOT"
    fi
  done
  report_speed "$SNAPSHOT"
  ((RSS)) && report_rss
  return 0
}

main
