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
(cd build && ctest --output-on-failure) | tee build/ctest.log
tools/fuzz.sh "${VMEMFS_FUZZ_SECONDS:-20}"
# One closing line for CI: ctest's own summary is followed by the fuzzers' output.
read -r failed total < <(sed -nE 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1 \2/p' build/ctest.log |
  tail -1)
echo "tests: $((total - failed)) passed, ${failed} failed"
