#!/bin/bash
# Runs every vmemfs test on this machine: unit tests, integration tests on real QEMU guests
# (booted by the ctest fixture), and a short run of every fuzzer. Installs what it needs.
# Run as root on Debian 12. VMEMFS_FUZZ_SECONDS (default 20) sets the time per fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# The libvirt tests need libvirtd (and virtlogd) running.
tools/libvirt/start-libvirtd.sh
# The guests stay up for the ThreadSanitizer run, which reuses them, and are stopped after it.
(cd build && VMEMFS_KEEP_GUESTS=1 ctest --output-on-failure) | tee build/ctest.log || true
# The libvirt driver tests share one domain across the binary's tests; it is not needed after.
tools/libvirt/undefine-test-domain.sh vmemfs-test-lv >/dev/null 2>&1 || true
tsan=passed
tools/tsan.sh >build/tsan.log 2>&1 || tsan=failed
tail -5 build/tsan.log
for g in l4 l5 pae legacy32; do python3 tools/guest/guest.py stop --dir build/guests/$g || true; done
tools/fuzz.sh "${VMEMFS_FUZZ_SECONDS:-20}"
# One closing line for CI: ctest's own summary is followed by the fuzzers' output.
read -r failed total < <(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/p' build/ctest.log |
  tail -1)
echo "tests: $((total - failed)) passed, ${failed} failed; ThreadSanitizer run: ${tsan}"
[[ $failed == 0 && $tsan == passed ]]
