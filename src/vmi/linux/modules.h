// The guest's loaded kernel modules, from the kernel's `modules` list alone: what
// /proc/modules shows (kernel/module/procfs.c m_show of 6.1) and each module's symbols as
// /proc/kallsyms lists them (kernel/module/kallsyms.c module_get_kallsym).
//
// Everything read is untrusted: the list walk is capped and cycle-checked (list_walk.h),
// "used by" lists and symbol counts are capped, and a module whose secondary data cannot be
// read keeps what was read, with the reason in Module::error.
#ifndef VMEMFS_VMI_LINUX_MODULES_H_
#define VMEMFS_VMI_LINUX_MODULES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/task_layout.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

// Where the fields live in this kernel's struct module, module_use and mod_kallsyms, resolved
// once from BTF, or inferred from memory on 32-bit kernels without BTF
// (module_layout_infer.h; tests hand in synthetic ones).
struct ModuleLayout {
  // struct module
  uint64_t list = 0;  // list_head on the `modules` list
  uint64_t name = 0;  // char[name_size]
  uint64_t name_size = 0;
  Field state;  // enum module_state
  // The sizes /proc/modules adds up: core_layout, init_layout (and data_layout with
  // CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC) up to 6.3; every mem[] entry from 6.4.
  static constexpr size_t kMaxSizeParts = 8;
  Field size_parts[kMaxSizeParts];
  size_t num_size_parts = 0;
  uint64_t base = 0;  // core_layout.base (mem[MOD_TEXT].base): the address /proc/modules shows
  Field refcnt;       // atomic_t refcnt.counter (CONFIG_MODULE_UNLOAD)
  uint64_t source_list = 0;     // list_head of module_use: the modules using this one
  uint64_t init = 0, exit = 0;  // function pointers: init without exit = [permanent]
  Field taints;  // size 0: not known (an inferred layout), read as no taints
  // False when init's offset is not known (an inferred layout): no module is [permanent].
  bool has_init = true;
  uint64_t kallsyms = 0;  // struct mod_kallsyms *
  uint64_t syms = 0;      // const struct kernel_symbol *: the EXPORT_SYMBOL (non-GPL) table
  Field num_syms;
  // False when no export table is known (an inferred layout where no module exports
  // anything): every module symbol is then local, as /proc/kallsyms shows it.
  bool has_exports = true;
  // struct module_use
  uint64_t use_source_list = 0;  // list_head on the used module's source_list
  uint64_t use_source = 0;       // struct module *: the user
  // struct mod_kallsyms
  uint64_t kallsyms_symtab = 0;  // Elf64_Sym *
  Field kallsyms_num_symtab;
  uint64_t kallsyms_strtab = 0;   // char *
  uint64_t kallsyms_typetab = 0;  // char *: one type letter per symtab entry
  // Elf_Sym: Elf64_Sym (24 bytes, st_value at 8), or Elf32_Sym on 32-bit kernels (16, at 4).
  uint64_t sym_size = 24;
  Field sym_value{8, 8};
};

// kNotFound naming the first missing member (kernels without CONFIG_MODULES have no struct
// module; without CONFIG_MODULE_UNLOAD no refcnt).
Result<ModuleLayout> ResolveModuleLayout(const KernelTypes& types);

struct ModuleLimits {
  size_t max_modules = 10'000;
  size_t max_users = 1'000;        // "used by" entries per module
  uint32_t max_symbols = 500'000;  // mod_kallsyms.num_symtab
  uint32_t max_exports = 100'000;  // num_syms, for the exported (upper case) check
};

// include/linux/module.h enum module_state.
enum class ModuleState : uint32_t { kLive = 0, kComing = 1, kGoing = 2, kUnformed = 3 };

struct Module {
  uint64_t address = 0;  // struct module
  std::string name;
  uint32_t state = 0;                // raw enum module_state
  uint64_t size = 0;                 // as /proc/modules: the sum of the layout sizes
  int64_t refcount = 0;              // refcnt - MODULE_REF_BASE
  std::vector<std::string> used_by;  // source_list order
  bool permanent = false;            // init but no exit: cannot be unloaded
  uint64_t base = 0;                 // core_layout.base
  uint64_t taints = 0;
  Status error;  // OK, or why part of the module could not be read
};

struct ModuleWalkReport {
  std::vector<Status> errors;  // per module (its secondary data)
  // OK, or why the list walk stopped before coming back to its head (naming the module).
  Status stopped;
  bool truncated = false;  // the cap stopped the walk
};

// Every module on the list whose head is the symbol `modules` (at `modules_head`), in list
// order (newest first, as /proc/modules). Fails only when the head cannot be read; a broken
// link, a cycle or the cap ends the walk with the modules found so far (reason in `report`).
Result<std::vector<Module>> ListModules(KernelMemory& mem, const ModuleLayout& layout,
                                        uint64_t modules_head, const ModuleLimits& limits = {},
                                        ModuleWalkReport* report = nullptr);

// The module's symbols as /proc/kallsyms shows them, in symtab order, without the nameless ones
// (entry 0, the ELF null symbol: /proc/kallsyms skips empty names too). Type
// letters are typetab's, upper case when the module exports the symbol by EXPORT_SYMBOL.
// Unformed modules have none.
Result<std::vector<Symbol>> ModuleSymbols(KernelMemory& mem, const ModuleLayout& layout,
                                          const Module& module, const ModuleLimits& limits = {});

// /proc/modules exactly (unformed modules skipped), with real addresses (as root sees them):
// %px, 2 * pointer_size hex digits.
std::string ModulesText(const std::vector<Module>& modules, uint64_t pointer_size = 8);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_MODULES_H_
