// Fuzzes the 32-bit module inference (module_layout_infer.h) and the module walk on its result
// (ListModules, ModuleSymbols, ModulesText) over hostile kernel memory.
//
// Input: 32-bit kernel memory as FuzzKernel32 (fuzz_kernel.h) maps it. Its first half is the
// searched "image data" (where the `modules` head is looked for), the second half stands for
// module memory. Checks that nothing crashes or hangs, that every cap holds and that an inferred
// layout names members inside the bytes it read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuzz_kernel.h"
#include "vmi/linux/module_layout_infer.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::FuzzKernel32;
using fuzz::Require;

constexpr uint64_t kMaxInput = 1 << 20;

void Run(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return;
  FuzzKernel32 kernel({data, size});
  KernelMemory& mem = kernel.mem();
  ModuleInferInput in{FuzzKernel32::Va(0), size / 2, FuzzKernel32::Va(0),
                      FuzzKernel32::kPageOffset};
  auto inferred = InferModuleLayout32(mem, in);
  if (!inferred) return;
  const ModuleLayout& l = inferred->layout;
  Require(l.name_size == 60 && l.sym_size == 16 && l.num_size_parts == 2);
  for (uint64_t off : {l.base, l.kallsyms, l.source_list, l.exit, l.refcnt.offset}) {
    Require(off < 1024);  // the bytes of each struct module read
  }
  Require(inferred->head >= in.search_start && inferred->head < in.search_start + in.search_bytes);
  ModuleLimits limits{.max_modules = 16, .max_users = 8, .max_symbols = 256, .max_exports = 32};
  ModuleWalkReport report;
  auto modules = ListModules(mem, l, inferred->head, limits, &report);
  if (!modules) return;
  Require(modules->size() <= limits.max_modules);
  for (const Module& m : *modules) {
    Require(m.name.size() < l.name_size && m.used_by.size() <= limits.max_users);
    auto syms = ModuleSymbols(mem, l, m, limits);
    if (syms) Require(syms->size() <= limits.max_symbols);
  }
  std::string text = ModulesText(*modules, 4);
  Require(text.size() <= modules->size() * (16 + 64 + limits.max_users * 61 + 64));
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
