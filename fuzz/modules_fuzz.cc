// Fuzzes the module walk (ListModules, ModuleSymbols, ModulesText) over hostile kernel memory.
//
// Input: [head offset:2][image...]. The image is kernel memory (fuzz_kernel.h); the `modules`
// list head is at the head offset (its top bit clear) and modules follow a fixed, compact
// ModuleLayout; with the top bit set, the layout is the kind inferred on 32-bit kernels
// (Elf32_Sym entries, no init, taints or export table). Checks that nothing crashes or hangs,
// that every cap holds, and that names stay within their buffers.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_kernel.h"
#include "vmi/linux/modules.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::FuzzKernel;
using fuzz::Require;

ModuleLayout Layout() {
  ModuleLayout l;
  l.state = {0x0, 4};
  l.list = 0x8;
  l.name = 0x18;
  l.name_size = 16;
  l.size_parts[0] = {0x28, 4};
  l.size_parts[1] = {0x2c, 4};
  l.num_size_parts = 2;
  l.base = 0x30;
  l.refcnt = {0x38, 4};
  l.source_list = 0x40;
  l.init = 0x50;
  l.exit = 0x58;
  l.taints = {0x60, 8};
  l.kallsyms = 0x68;
  l.syms = 0x70;
  l.num_syms = {0x78, 4};
  l.use_source_list = 0x0;
  l.use_source = 0x20;
  l.kallsyms_symtab = 0x0;
  l.kallsyms_num_symtab = {0x8, 4};
  l.kallsyms_strtab = 0x10;
  l.kallsyms_typetab = 0x18;
  return l;
}

ModuleLayout InferredStyle() {
  ModuleLayout l = Layout();
  l.sym_size = 16;
  l.sym_value = {4, 4};
  l.has_init = false;
  l.has_exports = false;
  l.taints = {};
  return l;
}

void Run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  uint16_t head;
  std::memcpy(&head, data, 2);
  FuzzKernel k(std::span(data + 2, size - 2));
  static const ModuleLayout full = Layout(), inferred = InferredStyle();
  const ModuleLayout& layout = (head & 0x8000) ? inferred : full;
  head &= 0x7fff;
  ModuleLimits limits{.max_modules = 16, .max_users = 8, .max_symbols = 256, .max_exports = 32};
  ModuleWalkReport report;
  auto modules = ListModules(k.mem(), layout, FuzzKernel::Va(head), limits, &report);
  if (!modules) return;
  Require(modules->size() <= limits.max_modules);
  for (const Module& m : *modules) {
    Require(m.name.size() < layout.name_size);
    Require(m.used_by.size() <= limits.max_users);
    auto syms = ModuleSymbols(k.mem(), layout, m, limits);
    if (!syms) continue;
    Require(syms->size() <= limits.max_symbols);
    for (const Symbol& s : *syms) Require(s.name.size() < 512 && s.module == m.name);
  }
  std::string text = ModulesText(*modules, &layout == &inferred ? 4 : 8);
  Require(text.size() <= modules->size() * (16 + 64 + limits.max_users * 17 + 64));
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
