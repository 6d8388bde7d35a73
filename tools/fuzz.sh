#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/*_fuzz.cc) with Clang, ASan and UBSan in build-fuzz/ and
# runs each for SECONDS (default 60), starting from the seeds in fuzz/corpus/<target>/.
# Exits non-zero if a build fails or any fuzzer finds a crash, leak or timeout; the input that
# triggered it is left in build-fuzz/artifacts/<target>/.
#
# Usage: tools/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-fuzz"

CC=clang CXX=clang++ cmake -S "${root}" -B "${build}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVMEMFS_BUILD_FUZZERS=ON -DVMEMFS_SANITIZE=ON \
  -DVMEMFS_BUILD_TESTS=OFF -DVMEMFS_BUILD_BENCHMARKS=OFF

targets=()
for source in "${root}"/fuzz/*_fuzz.cc; do
  targets+=("$(basename "${source}" .cc)")
done
cmake --build "${build}" -j"$(nproc)" --target "${targets[@]}"

failed=()
for target in "${targets[@]}"; do
  # The working corpus grows in build-fuzz/; the checked-in seeds stay untouched.
  corpus="${build}/corpus/${target}"
  artifacts="${build}/artifacts/${target}"
  mkdir -p "${corpus}" "${artifacts}"
  seeds=()
  if [[ -d "${root}/fuzz/corpus/${target}" ]]; then seeds=("${root}/fuzz/corpus/${target}"); fi
  timeout=10
  if [[ ${target} == linux_discovery_fuzz ]]; then
    # It patches a real test guest's memory (tools/guest prepares it; tools/test.sh has by now).
    export VMEMFS_FUZZ_GUEST="${VMEMFS_FUZZ_GUEST:-${root}/build/guests/l4}"
    if [[ ! -f ${VMEMFS_FUZZ_GUEST}/core.elf ]]; then
      echo "=== ${target}: skipped: no test guest in ${VMEMFS_FUZZ_GUEST} (run tools/test.sh first)"
      continue
    fi
    timeout=120  # one input is a whole discovery: kallsyms, BTF, tasks, files, modules
  fi
  echo "=== ${target}: ${seconds} s"
  if ! "${build}/fuzz/${target}" -max_total_time="${seconds}" -max_len=8192 -timeout="${timeout}" \
      -print_final_stats=1 -artifact_prefix="${artifacts}/" "${corpus}" "${seeds[@]}"; then
    failed+=("${target}")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz.sh: crashes found by: ${failed[*]} (inputs in ${build}/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} fuzzers ran ${seconds} s each without finding a crash"
