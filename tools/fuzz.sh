#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/*_fuzz.cc) with Clang, ASan and UBSan in build-fuzz/ and
# runs each for SECONDS (default 60), starting from the seeds in fuzz/corpus/<target>/.
# Exits non-zero if a build fails or any fuzzer finds a crash, leak or timeout; the input that
# triggered it is left in build-fuzz/artifacts/<target>/. Ends with a table per target:
# executions, coverage edges, corpus size, result (build-fuzz/stats/<target>.log keeps the log).
#
# Usage: tools/fuzz.sh [SECONDS [TARGET...]]
#   VMEMFS_FUZZ_MINIMIZE=1  afterwards, replace fuzz/corpus/<target>/ with the minimized union
#                           of the seeds and what the run found (a campaign's corpus to commit)
#   VMEMFS_FUZZ_TIMEOUT=S   an input that runs longer than S seconds of wall time is a finding
#                           (default 10; 120 for linux_discovery_fuzz). A campaign run at low
#                           priority on a busy machine wants more: libFuzzer's clock is the wall.
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-fuzz"

CC=clang CXX=clang++ cmake -S "${root}" -B "${build}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVMEMFS_BUILD_FUZZERS=ON -DVMEMFS_SANITIZE=ON \
  -DVMEMFS_BUILD_TESTS=OFF -DVMEMFS_BUILD_BENCHMARKS=OFF >/dev/null

targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in "${root}"/fuzz/*_fuzz.cc; do
    targets+=("$(basename "${source}" .cc)")
  done
fi
cmake --build "${build}" -j"$(nproc)" --target "${targets[@]}"

# Prints "execs edges corpus" from a libFuzzer log (its last status line and final stats).
stats() {
  local execs edges corpus
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$1" | tail -1)
  edges=$(grep -oE ' cov: [0-9]+' "$1" | tail -1 | tr -dc 0-9)
  corpus=$(grep -oE ' corp: [0-9]+' "$1" | tail -1 | tr -dc 0-9)
  echo "${execs:-0} ${edges:-0} ${corpus:-0}"
}

failed=()
summary=()
mkdir -p "${build}/stats"
for target in "${targets[@]}"; do
  # The working corpus grows in build-fuzz/; the checked-in seeds stay untouched.
  corpus="${build}/corpus/${target}"
  artifacts="${build}/artifacts/${target}"
  log="${build}/stats/${target}.log"
  mkdir -p "${corpus}" "${artifacts}"
  seeds=()
  if [[ -d "${root}/fuzz/corpus/${target}" ]]; then seeds=("${root}/fuzz/corpus/${target}"); fi
  timeout="${VMEMFS_FUZZ_TIMEOUT:-10}"
  if [[ ${target} == linux_discovery_fuzz ]]; then
    # It patches a real test guest's memory (tools/guest prepares it; tools/test.sh has by now).
    export VMEMFS_FUZZ_GUEST="${VMEMFS_FUZZ_GUEST:-${root}/build/guests/l4}"
    if [[ ! -f ${VMEMFS_FUZZ_GUEST}/core.elf ]]; then
      echo "=== ${target}: skipped: no test guest in ${VMEMFS_FUZZ_GUEST} (run tools/test.sh first)"
      summary+=("${target} - - - skipped:no-guest")
      continue
    fi
    # One input is a whole discovery: kallsyms, BTF, tasks, files, modules.
    timeout=$((timeout > 120 ? timeout : 120))
  fi
  echo "=== ${target}: ${seconds} s"
  result=ok
  if ! "${build}/fuzz/${target}" -max_total_time="${seconds}" -max_len=8192 -timeout="${timeout}" \
      -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="${artifacts}/" \
      "${corpus}" "${seeds[@]}" >"${log}" 2>&1; then
    failed+=("${target}")
    result=FAILED
    tail -40 "${log}"
  fi
  summary+=("${target} $(stats "${log}") ${result}")
  if [[ ${VMEMFS_FUZZ_MINIMIZE:-0} == 1 && ${result} == ok ]]; then
    minimized="${build}/minimized/${target}"
    rm -rf "${minimized}" && mkdir -p "${minimized}"
    "${build}/fuzz/${target}" -merge=1 -max_len=8192 -timeout="${timeout}" -rss_limit_mb=4096 \
      "${minimized}" "${seeds[@]}" "${corpus}" >>"${log}" 2>&1
    rm -rf "${root}/fuzz/corpus/${target}"
    cp -r "${minimized}" "${root}/fuzz/corpus/${target}"
  fi
done

printf '%-24s %12s %8s %8s  %s\n' target executions edges corpus result
for line in "${summary[@]}"; do
  # shellcheck disable=SC2086
  printf '%-24s %12s %8s %8s  %s\n' ${line}
done
if ((${#failed[@]})); then
  echo "fuzz.sh: crashes found by: ${failed[*]} (inputs in ${build}/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} fuzzers ran ${seconds} s each without finding a crash"
