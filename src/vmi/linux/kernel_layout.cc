#include "vmi/linux/kernel_layout.h"

#include <cstdio>
#include <optional>

#include "base/hex.h"
#include "vmi/linux/kernel_layout_i386.h"
#include "vmi/physical_memory.h"

namespace vmemfs::vmi::linux_os {
namespace {


struct Candidate {
  PagingMode mode;
  uint64_t root;
  Status verdict;  // OK when _stext translated as expected
  uint64_t stext_pa = 0;
};

Candidate Check(Guest& guest, PagingMode mode, uint64_t root, uint64_t stext, uint64_t want) {
  Candidate c{mode, root, Status()};
  if (root % 4096 != 0 || guest.RangeOf(root) == nullptr) {
    c.verdict = BadDataError("root " + Hex(root) + " is not a page of RAM");
    return c;
  }
  auto pa = TranslateWith(guest, mode, root, stext);
  if (!pa) {
    c.verdict = pa.error().WithContext("_stext " + Hex(stext) + " through root " + Hex(root));
  } else if (*pa != want) {
    c.stext_pa = *pa;
    c.verdict = BadDataError("_stext " + Hex(stext) + " translates to " + Hex(*pa) +
                             " through root " + Hex(root) + ", expected " + Hex(want));
  } else {
    c.stext_pa = *pa;
  }
  return c;
}

}  // namespace

// Wraps modulo 2^64 on purpose: phys_base is negative when the image sits below its link
// address.
std::optional<uint64_t> ImageVirtualToPhysical(uint64_t va, int64_t phys_base) {
  if (va < kStartKernelMap) return std::nullopt;
  return va - kStartKernelMap + static_cast<uint64_t>(phys_base);
}

Result<uint64_t> TranslateWith(Guest& guest, PagingMode mode, uint64_t root, uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(guest.physical(), mode, root, va));
  return m.pa + (va - m.va);
}

Result<KernelLayout> FindKernelLayout(Guest& guest, const VmcoreInfo& info,
                                      std::span<const RootCandidate> register_roots) {
  if (IsI386VmcoreInfo(info)) return FindI386KernelLayout(guest, info, register_roots);
  auto stext = info.Symbol("_stext");
  if (!stext) return NotFoundError("VMCOREINFO has no SYMBOL(_stext)");
  const char* pgt_name = "init_top_pgt";
  auto pgt = info.Symbol(pgt_name);
  if (!pgt) pgt = info.Symbol(pgt_name = "swapper_pg_dir");
  if (!pgt)
    return NotFoundError("VMCOREINFO has no SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)");
  int64_t phys_base = info.Number("phys_base").value_or(0);
  auto want = ImageVirtualToPhysical(*stext, phys_base);
  auto root = ImageVirtualToPhysical(*pgt, phys_base);
  if (!want || !root)
    return BadDataError("VMCOREINFO: _stext or page tables below __START_KERNEL_map");

  bool l5 = info.Number("pgtable_l5_enabled").value_or(0) == 1;
  PagingMode mode = l5 ? PagingMode::kIa32e5 : PagingMode::kIa32e4;
  Candidate from_note = Check(guest, mode, *root, *stext, *want);

  KernelLayout layout{
      mode, *root, info.kernel_offset().value_or(0), phys_base, *stext, 0, info.os_release(),
      "",   8, 0, {}};
  auto& p = layout.provenance;
  p.push_back({"kernel-release", info.os_release(), "VMCOREINFO OSRELEASE"});
  p.push_back({"paging-mode", std::string(PagingModeName(mode)),
               std::string("VMCOREINFO NUMBER(pgtable_l5_enabled)=") + (l5 ? "1" : "0")});
  p.push_back({"kaslr-offset", Hex(layout.kaslr_offset), "VMCOREINFO KERNELOFFSET"});
  p.push_back({"phys-base", Hex(static_cast<uint64_t>(phys_base)), "VMCOREINFO NUMBER(phys_base)=" + std::to_string(phys_base)});

  std::string verified = "verified: _stext " + Hex(*stext) + " -> " + Hex(*want);
  if (from_note.verdict.ok()) {
    layout.stext_pa = from_note.stext_pa;
    layout.root_source =
        std::string("VMCOREINFO SYMBOL(") + pgt_name + ") + phys_base, " + verified;
    p.push_back({"page-table-root", Hex(*root), layout.root_source});
    return layout;
  }
  std::optional<Candidate> from_regs;
  for (const RootCandidate& r : register_roots) {
    from_regs = Check(guest, r.space.mode, r.space.root, *stext, *want);
    if (!from_regs->verdict.ok()) continue;
    layout.mode = from_regs->mode;
    layout.page_table_root = from_regs->root;
    layout.stext_pa = from_regs->stext_pa;
    layout.root_source = r.source + ", " + verified;
    p.push_back({"page-table-root", Hex(from_regs->root),
                 layout.root_source + "; VMCOREINFO's failed: " + from_note.verdict.message()});
    return layout;
  }
  Status s = from_note.verdict.WithContext("kernel page tables not found: VMCOREINFO root");
  if (from_regs) {
    s = s.WithContext("registers' roots also failed (last: " + from_regs->verdict.message() + ")");
  }
  return BadDataError(s.message());
}

}  // namespace vmemfs::vmi::linux_os
