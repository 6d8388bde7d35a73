#include "vmi/linux/kernel_layout_i386.h"

#include <optional>

#include "base/hex.h"
#include "vmi/linux/i386_split.h"

namespace vmemfs::vmi::linux_os {
namespace {

// _stext verifies through (mode, root) at this split: the translation is the direct map's.
Status Verify(Guest& guest, PagingMode mode, uint64_t root, uint64_t stext, uint64_t page_offset) {
  if (root % 32 != 0 || guest.RangeOf(root) == nullptr) {
    return BadDataError("root " + Hex(root) + " is not in RAM");
  }
  VMEMFS_ASSIGN_OR_RETURN(uint64_t pa, TranslateWith(guest, mode, root, stext));
  if (pa != stext - page_offset) {
    return BadDataError("_stext " + Hex(stext) + " translates to " + Hex(pa) + " through root " +
                        Hex(root) + ", not " + Hex(stext - page_offset));
  }
  return Status();
}

void AddCommonFacts(KernelLayout& layout, const VmcoreInfo& info, bool pae, uint64_t page_offset) {
  auto& p = layout.provenance;
  p.push_back({"kernel-release", info.os_release(), "VMCOREINFO OSRELEASE"});
  p.push_back({"pointer-size", "4",
               "32-bit kernel: VMCOREINFO has no NUMBER(phys_base)/SYMBOL(init_top_pgt) and "
               "SYMBOL(_stext) is below 4 GiB"});
  p.push_back({"paging-mode", std::string(PagingModeName(layout.mode)),
               pae ? "VMCOREINFO CONFIG_X86_PAE=y" : "VMCOREINFO without CONFIG_X86_PAE"});
  p.push_back({"page-offset", Hex(page_offset),
               "the VMSPLIT at which swapper_pg_dir maps _stext to _stext - PAGE_OFFSET"});
}

}  // namespace

bool IsI386VmcoreInfo(const VmcoreInfo& info) {
  auto stext = info.Symbol("_stext");
  return stext && *stext < (1ull << 32) && !info.Number("phys_base") &&
         !info.Symbol("init_top_pgt");
}

Result<KernelLayout> FindI386KernelLayout(Guest& guest, const VmcoreInfo& info,
                                          std::span<const RootCandidate> register_roots) {
  auto stext = info.Symbol("_stext");
  auto pgd = info.Symbol("swapper_pg_dir");
  if (!stext || !pgd) return NotFoundError("VMCOREINFO has no SYMBOL(_stext) or swapper_pg_dir");
  const bool pae = info.Get("CONFIG_X86_PAE").value_or("") == "y";
  const PagingMode mode = pae ? PagingMode::kPae : PagingMode::kLegacy32;
  KernelLayout layout{mode, 0, 0, 0, *stext, 0, info.os_release(), "", 4, 0, {}};
  layout.pointer_size = 4;
  Status last = BadDataError("no PAGE_OFFSET below _stext and swapper_pg_dir");
  for (uint64_t page_offset : kI386PageOffsets) {
    if (*stext < page_offset || *pgd < page_offset) continue;
    const uint64_t root = *pgd - page_offset;
    Status s = Verify(guest, mode, root, *stext, page_offset);
    if (!s.ok()) {
      last = s;
      continue;
    }
    layout.page_table_root = root;
    layout.stext_pa = *stext - page_offset;
    layout.page_offset = page_offset;
    // The slide is not in an i386 note; the physical load address minus the default
    // CONFIG_PHYSICAL_START is not it either (alignment), so none is claimed.
    layout.root_source = "VMCOREINFO SYMBOL(swapper_pg_dir) - PAGE_OFFSET, verified: _stext " +
                         Hex(*stext) + " -> " + Hex(layout.stext_pa);
    AddCommonFacts(layout, info, pae, page_offset);
    layout.provenance.push_back({"page-table-root", Hex(root), layout.root_source});
    return layout;
  }
  // A register root in the note's mode: the split from the translation it gives.
  for (const RootCandidate& r : register_roots) {
    if (r.space.mode != mode) continue;
    auto pa = TranslateWith(guest, mode, r.space.root, *stext);
    if (!pa || *pa > *stext) continue;
    const uint64_t page_offset = *stext - *pa;
    if (page_offset % (1ull << 22) != 0) continue;  // every split is 4 MiB aligned
    layout.page_table_root = r.space.root;
    layout.stext_pa = *pa;
    layout.page_offset = page_offset;
    layout.root_source = r.source + ", verified: _stext " + Hex(*stext) + " -> " + Hex(*pa);
    AddCommonFacts(layout, info, pae, page_offset);
    layout.provenance.push_back({"page-table-root", Hex(r.space.root),
                                 layout.root_source + "; swapper_pg_dir failed: " + last.message()});
    return layout;
  }
  return BadDataError("i386 kernel page tables not found: " + last.message());
}

}  // namespace vmemfs::vmi::linux_os
