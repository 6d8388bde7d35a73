// Fuzzes the 32-bit module inference (module_layout_infer.h) and the module walk on its result
// (ListModules, ModuleSymbols, ModulesText) over hostile kernel memory.
//
// Input: kernel memory behind 2-level 32-bit page tables that map lowmem at 0xc0000000
// (PAGE_OFFSET) with 4 MiB pages: physical 0 holds the page directory, the input follows at
// physical kImage. Its first half is the searched "image data" (where the `modules` head is
// looked for), the second half stands for module memory. Checks that nothing crashes or hangs,
// that every cap holds and that an inferred layout names members inside the bytes it read.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuzz_kernel.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/module_layout_infer.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::Require;

constexpr uint64_t kPageOffset = 0xc0000000;
constexpr uint64_t kImage = 0x10000;
constexpr uint64_t kMaxInput = 1 << 20;

void Run(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return;
  auto driver = std::make_unique<testing::MemoryDriver>(kImage + size + 1);
  for (uint32_t i = 0; i * (4u << 20) < kImage + size + 1; ++i) {
    driver->Put32(((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);
  }
  if (size > 0) driver->Put(kImage, data, size);
  auto guest = Guest::Open(std::move(driver));
  if (!guest) return;
  KernelMemory mem(**guest, AddressSpace{PagingMode::kLegacy32, 0}, 4);
  ModuleInferInput in{kPageOffset + kImage, size / 2, kPageOffset + kImage, kPageOffset};
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
