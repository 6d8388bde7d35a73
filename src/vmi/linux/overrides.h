// Optional files that replace what LinuxOs::Discover would find in memory, for exotic kernels
// (no BTF, no kallsyms in VMCOREINFO). A Debian/Ubuntu kernel with BTF never needs them.
//
//   system_map (--symbols): a System.map; its symbols replace the kallsyms tables'.
//   isf (--isf): a Volatility 3 ISF JSON; its types replace BTF, and its symbols replace
//       kallsyms unless a System.map is also given.
//   offsets (--offsets): a LibVMI offsets file; its five offsets replace BTF (see
//       offsets_file.h: not enough for a process list), its `sysmap` is used as a System.map
//       when no --symbols is given.
// File symbols are link-time addresses: Discover slides them by the guest's KASLR offset (the
// file's _stext against VMCOREINFO's SYMBOL(_stext) when both exist, else KERNELOFFSET); only
// kernel-half addresses move (per-cpu offsets stay). --isf and --offsets together are refused.
#ifndef VMEMFS_VMI_LINUX_OVERRIDES_H_
#define VMEMFS_VMI_LINUX_OVERRIDES_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

// The files' contents, parsed once and shared by every VM they apply to (immutable).
struct LoadedOverrides {
  std::vector<Symbol> symbols;               // link-time addresses; empty: kallsyms from memory
  std::string symbols_source;                // "System.map /path", for `info`
  std::shared_ptr<const KernelTypes> types;  // null: BTF from memory
  std::string types_source;
};

struct LinuxOverrides {
  std::optional<std::string> system_map;
  std::optional<std::string> isf;
  std::optional<std::string> offsets;
  // Filled by Load(); Discover loads the files itself when this is null.
  std::shared_ptr<const LoadedOverrides> loaded;

  bool empty() const { return !system_map && !isf && !offsets; }
  // Reads and checks every given file (idempotent). Errors name the file, with a line where
  // the format has lines.
  Status Load();
};

// The loaded file symbols slid to where this guest's kernel sits. *how says by what and why,
// for `info`. Errors: kBadData when the slide would move _stext out of the kernel half.
Result<SymbolTable> SlideFileSymbols(const LoadedOverrides& loaded, const VmcoreInfo& info,
                                     std::string* how);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_OVERRIDES_H_
