#!/usr/bin/env bash
# One command for all benchmarks: builds Release in build-release/, then runs vmi_bench and
# fs_bench.sh. Arguments go to fs_bench.sh (e.g. --snapshot FILE, --reps N), except --live,
# which also runs live_bench.sh (boots test guests; QEMU shm / process memory / gdbstub), and
# --vmcore, which also runs vmcore_bench.sh (crash/drgn/dd on vmcore; needs build/guests).
#   env VMEMFS_BENCH_SNAPSHOT, VMEMFS_BENCH_CORE: see vmi_bench.cc
set -euo pipefail
readonly REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILD="${REPO}/build-release"
LIVE=0
VMCORE=0
args=()
for arg in "$@"; do
  case "$arg" in
    --live) LIVE=1 ;;
    --vmcore) VMCORE=1 ;;
    *) args+=("$arg") ;;
  esac
done
set -- "${args[@]}"

cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVMEMFS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target vmemfs fuse_baseline pread_lat vmi_bench

echo "== vmi_bench: introspection API calls vs memcpy from an mmap =="
# Three repetitions: the ratio table uses the medians.
"${BUILD}/bench/vmi_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

echo
echo "== fs_bench: vmemfs vs the minimal memcpy FUSE server =="
"${REPO}/bench/fs_bench.sh" --build "$BUILD" "$@"

if ((LIVE)); then
  echo
  echo "== live_bench: live sources (QEMU shm, process memory, gdbstub) vs the snapshot driver =="
  "${REPO}/bench/live_bench.sh" --build "$BUILD"
fi

if ((VMCORE)); then
  echo
  echo "== vmcore_bench: vmcore vs pmem, crash/drgn on vmcore vs on a copy on disk =="
  "${REPO}/bench/vmcore_bench.sh" --build "$BUILD"
fi
