// The `modules` list head and the struct module offsets /proc/modules and the module symbols
// need, inferred from a 32-bit kernel's own memory when it has no BTF and its kallsyms has no
// data symbols (Debian's i386 kernels: CONFIG_DEBUG_INFO_BTF and CONFIG_KALLSYMS_ALL off).
// The result feeds the one module walker (modules.h).
//
// What the kernel guarantees and the inference relies on, each checked on every module found:
//  * struct module starts {enum module_state state; struct list_head list; char
//    name[MODULE_NAME_LEN]} (MODULE_NAME_LEN = 64 - sizeof(long)): state <= UNFORMED, the
//    name printable and NUL-terminated.
//  * `modules` is a list_head in the kernel image's data ([_etext, __init_begin)); the ring
//    through it holds struct modules only, none inside the image (they live in module memory).
//  * core_layout {base, size, text_size, ...}: base page-aligned, text_size <= size, and the
//    struct module itself inside [base + text_size, base + size) (.gnu.linkonce.this_module
//    is core data). With CONFIG_MODULES_TREE_LOOKUP its mtn.mod points back at the module;
//    init_layout is the next module_layout (its mtn.mod points back too) and is all zero once
//    init has run. taints is the word after it (x86-32's mod_arch_specific is empty: no ORC).
//  * kallsyms points at core_kallsyms right after it in every live module; mod_kallsyms is
//    {symtab, num_symtab, strtab, typetab}, symtab[0] the ELF null symbol.
//  * syms/crcs/num_syms: an export table of PREL32 kernel_symbols (x86) whose values and
//    names all lie in the module's core.
//  * source_list, target_list, exit, refcnt (CONFIG_MODULE_UNLOAD, in this order): lists of
//    module_use {source_list, target_list, source, target} that name the module and modules on
//    the list, exit NULL or in the core's text, refcnt >= MODULE_REF_BASE in live modules.
//  * init: the last member before core_layout (cacheline-aligned: zero padding between), a
//    pointer into the freed init text (outside the core) or NULL.
// Optional facts (init, taints, exports) that no offset fits are left out and said so.
//
// Everything read is bounded: the searched region, the candidate heads, the ring walks, the
// bytes of each struct module and the modules sampled.
#ifndef VMEMFS_VMI_LINUX_MODULE_LAYOUT_INFER_H_
#define VMEMFS_VMI_LINUX_MODULE_LAYOUT_INFER_H_

#include <cstdint>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/modules.h"

namespace vmemfs::vmi::linux_os {

struct ModuleInferInput {
  uint64_t search_start = 0;  // _etext: the image's data follows
  uint64_t search_bytes = 0;  // up to __init_begin
  uint64_t image_start = 0;   // _stext: no struct module lies in [image_start, search end)
  uint64_t page_offset = 0;
};

struct InferredModules {
  ModuleLayout layout;  // 32-bit: Elf32_Sym, module_use and mod_kallsyms of 4-byte pointers
  uint64_t head = 0;    // VA of the `modules` list_head
  size_t modules = 0;   // on the list when inferred
  std::vector<Fact> how;
};

// Errors: kNotFound when no list head, or no offset of a required member (core_layout,
// kallsyms, source_list...) fits (naming which); the memory's error when a read fails for a
// reason other than a fault. A kernel with no module loaded has no ring to find: kNotFound.
Result<InferredModules> InferModuleLayout32(KernelMemory& mem, const ModuleInferInput& in);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_MODULE_LAYOUT_INFER_H_
