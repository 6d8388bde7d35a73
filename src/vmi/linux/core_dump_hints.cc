#include "vmi/linux/core_dump_hints.h"

#include <fmt/format.h>

#include "base/hex.h"

namespace vmemfs::vmi::linux_os {
namespace {

// arch/x86/include/asm/page_64_types.h: the direct map without CONFIG_RANDOMIZE_MEMORY.
constexpr uint64_t kPageOffsetL4 = 0xffff888000000000ull;
constexpr uint64_t kPageOffsetL5 = 0xff11000000000000ull;
// KASLR moves the direct map in PUD (1 GiB) steps (arch/x86/mm/kaslr.c).
constexpr uint64_t kDirectMapAlign = 1ull << 30;
// KERNEL_IMAGE_SIZE is at most 1 GiB on x86_64.
constexpr uint64_t kMaxImageBytes = 1ull << 30;
constexpr uint64_t kPage = 4096;

// The kernel's direct map base, checked: it must map _stext's physical address to itself.
Result<uint64_t> DirectMapBase(KernelMemory& memory, const KernelLayout& layout,
                               const SymbolTable& symbols, std::string* how) {
  uint64_t base = layout.mode == PagingMode::kIa32e5 ? kPageOffsetL5 : kPageOffsetL4;
  *how = "the default of the paging mode";
  if (const Symbol* sym = symbols.Lookup("page_offset_base")) {
    VMEMFS_ASSIGN_OR_RETURN(base, memory.U64(sym->address));
    *how = "page_offset_base";
  }
  if (base % kDirectMapAlign != 0 || (base >> 63) == 0) {
    return BadDataError(fmt::format("implausible direct map base {} ({})", Hex(base), *how));
  }
  auto pa = memory.Translate(base + layout.stext_pa);
  if (!pa || *pa != layout.stext_pa) {
    return BadDataError(fmt::format("the direct map at {} ({}) does not map _stext's {}",
                                    Hex(base), *how, Hex(layout.stext_pa)));
  }
  return base;
}

// _text.._end where the kernel's own mapping of its image puts it, checked at _text.
Result<CoreDumpHints::Image> KernelImage(KernelMemory& memory, const KernelLayout& layout,
                                         const SymbolTable& symbols) {
  const Symbol* text = symbols.Lookup("_text");
  const Symbol* end = symbols.Lookup("_end");
  if (!text || !end) return NotFoundError("no _text/_end symbols");
  if (end->address <= text->address || end->address - text->address > kMaxImageBytes ||
      text->address % kPage != 0) {
    return BadDataError(
        fmt::format("implausible kernel image {}-{}", Hex(text->address), Hex(end->address)));
  }
  auto pa = ImageVirtualToPhysical(text->address, layout.phys_base);
  if (!pa) return BadDataError("_text " + Hex(text->address) + " below __START_KERNEL_map");
  auto mapped = memory.Translate(text->address);
  if (!mapped || *mapped != *pa) {
    return BadDataError(fmt::format("_text {} does not map to {} (phys_base {})",
                                    Hex(text->address), Hex(*pa), layout.phys_base));
  }
  uint64_t length = ((end->address - text->address) + kPage - 1) & ~(kPage - 1);
  CoreDumpHints::Image image{text->address, *pa, length, std::nullopt};
  // vmlinux links _text at its address less the slide; a slide that would put it below
  // __START_KERNEL_map is not one the kernel makes (hostile note): no link-time copy then.
  if (layout.kaslr_offset != 0 && layout.kaslr_offset <= text->address - kStartKernelMap &&
      layout.kaslr_offset % kPage == 0) {
    image.link_va = text->address - layout.kaslr_offset;
  }
  return image;
}

}  // namespace

Result<CoreDumpHints> FindCoreDumpHints(KernelMemory& memory, const VmcoreInfo& info,
                                        const KernelLayout& layout, const SymbolTable& symbols) {
  // An i386 core is ELF32 or EM_386 with the lowmem direct map only; the x86-64 tools this is
  // tested with (Debian's crash and drgn) do not read one.
  if (layout.pointer_size != 8) {
    return UnsupportedError("not for 32-bit kernels yet (the kdump layout written is x86-64's)");
  }
  CoreDumpHints hints;
  hints.note_name = "VMCOREINFO";
  hints.note_type = 0;  // as the kernel writes it (crash_core.c)
  hints.note_text = info.text();
  std::string direct_how;
  VMEMFS_ASSIGN_OR_RETURN(hints.direct_map_base,
                          DirectMapBase(memory, layout, symbols, &direct_how));
  VMEMFS_ASSIGN_OR_RETURN(hints.kernel_image, KernelImage(memory, layout, symbols));
  hints.how = fmt::format(
      "ELF core as kdump writes it: VMCOREINFO note, direct map at {} ({}), kernel image "
      "{}-{} at physical {}",
      Hex(*hints.direct_map_base), direct_how, Hex(hints.kernel_image->va),
      Hex(hints.kernel_image->va + hints.kernel_image->length), Hex(hints.kernel_image->pa));
  return hints;
}

}  // namespace vmemfs::vmi::linux_os
