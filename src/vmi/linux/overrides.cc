#include "vmi/linux/overrides.h"

#include <fmt/format.h>

#include "vmi/linux/isf.h"
#include "vmi/linux/offsets_file.h"
#include "vmi/linux/system_map.h"

namespace vmemfs::vmi::linux_os {

Status LinuxOverrides::Load() {
  if (loaded) return Status();
  if (isf && offsets) {
    return InvalidArgumentError("--isf and --offsets both give struct layouts; give one");
  }
  auto out = std::make_shared<LoadedOverrides>();
  std::optional<std::string> map_path = system_map;
  if (offsets) {
    auto read = ReadOffsetsFile(*offsets);
    if (!read) return read.error().WithContext("--offsets");
    OffsetsFile& file = *read;
    out->types = std::move(file.types);
    out->types_source = "LibVMI offsets " + *offsets + " (block " + file.block + ")";
    if (!map_path) map_path = file.sysmap;  // as LibVMI itself would use it
  }
  if (isf) {
    auto read = ReadIsf(*isf);
    if (!read) return read.error().WithContext("--isf");
    Isf& file = *read;
    out->types = std::move(file.types);
    out->types_source = "ISF " + *isf;
    if (!map_path && !file.symbols.empty()) {
      out->symbols = std::move(file.symbols);
      out->symbols_source = "ISF " + *isf;
    }
  }
  if (map_path) {
    auto read = ReadSystemMap(*map_path);
    if (!read) return read.error().WithContext(system_map ? "--symbols" : "sysmap of --offsets");
    out->symbols = std::move(*read);
    out->symbols_source = "System.map " + *map_path;
  }
  loaded = std::move(out);
  return Status();
}

namespace {

// Kernel-half addresses move with KASLR; small absolute ones (per-cpu offsets) do not.
constexpr uint64_t kKernelHalf = 1ull << 63;

}  // namespace

Result<SymbolTable> SlideFileSymbols(const LoadedOverrides& loaded, const VmcoreInfo& info,
                                     std::string* how) {
  // _stext against SYMBOL(_stext) is exact even for a file that is already slid (a saved
  // /proc/kallsyms); KERNELOFFSET assumes link-time addresses.
  const Symbol* file_stext = nullptr;
  for (const Symbol& s : loaded.symbols) {
    if (s.name == "_stext") {
      file_stext = &s;
      break;
    }
  }
  uint64_t slide = 0;
  std::optional<uint64_t> stext = info.Symbol("_stext");
  if (file_stext && stext) {
    slide = *stext - file_stext->address;
    *how = fmt::format("slid by {:#x} (its _stext to VMCOREINFO's)", slide);
  } else if (info.kernel_offset()) {
    slide = *info.kernel_offset();
    *how = fmt::format("slid by {:#x} (VMCOREINFO KERNELOFFSET)", slide);
  } else {
    *how = "not slid (no _stext in the file or VMCOREINFO, no KERNELOFFSET)";
  }
  if (file_stext && (file_stext->address + slide) < kKernelHalf) {
    return BadDataError(loaded.symbols_source + ": _stext would land outside the kernel half");
  }
  std::vector<Symbol> symbols = loaded.symbols;
  for (Symbol& s : symbols) {
    if (s.address >= kKernelHalf) s.address += slide;
  }
  return SymbolTable(std::move(symbols));
}

}  // namespace vmemfs::vmi::linux_os
