#!/usr/bin/env bash
# The concurrent parts of vmemfs under ThreadSanitizer: builds build-tsan/ (-fsanitize=thread)
# and runs the tests that exercise threads: the inode tree under concurrent lookups, listings
# and forgets; the in-process FUSE server; the Guest's freshness rule; the GDB driver's
# serialized reads and batches; and, with the TSan-built daemon, the integration tests with
# concurrent readers, live guests and a guest's whole life. Any report fails the run (the
# daemons write theirs to build-tsan/reports/).
# Usage: tools/tsan.sh. Needs the test guests running (tools/test.sh keeps them for this).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-tsan"
reports="${build}/reports"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMEMFS_TSAN=ON \
  -DVMEMFS_BUILD_BENCHMARKS=OFF -DVMEMFS_GUESTS_DIR="${VMEMFS_GUESTS:-${root}/build/guests}" \
  >/dev/null
nice cmake --build "$build" -j"$(nproc)" --target fs_tests vmi_tests drivers_tests vmemfs \
  integration_tests
rm -rf "$reports"
mkdir -p "$reports"
# second_deadlock_stack: a lock-order report names both stacks.
# suppressions: only orders TSan cannot see, each explained in the file.
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=${reports}/tsan suppressions=${root}/tools/tsan.supp"
export VMEMFS_BIN="${build}/src/vmemfs"
export VMEMFS_GUESTS="${VMEMFS_GUESTS:-${root}/build/guests}"

status=0
run() {  # BINARY [GTEST FILTER]
  echo "tsan: $(basename "$1") ${2:-}"
  "$1" ${2:+--gtest_filter="$2"} --gtest_brief=1 || status=1
}
run "${build}/tests/fs_tests"
run "${build}/tests/vmi_tests"
run "${build}/tests/drivers_tests" 'GdbDriverTest.*:FaultyDriverTest.*:PhysMapTest.*'
run "${build}/tests/integration/integration_tests" \
  '*EightConcurrentReaders*:Guests/LiveGuestTest.*:LifecycleTest.*:Guests/LinuxGuestTest.ProcessesAndCommsAreTheGuestsOwn*'

if compgen -G "${reports}/tsan*" >/dev/null; then
  echo "tsan: ThreadSanitizer reports:"
  cat "${reports}"/tsan*
  status=1
fi
((status == 0)) && echo "tsan: clean"
exit "$status"
