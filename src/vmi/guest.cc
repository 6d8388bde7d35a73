#include "vmi/guest.h"

#include <algorithm>
#include <cstring>

namespace vmemfs::vmi {
namespace {

using drivers::Register;

bool IsFault(const Status& s) { return s.code() == ErrorCode::kFault; }

// Appends a hole, merging it with the previous one when adjacent.
void AddHole(std::vector<Hole>& holes, uint64_t offset, uint64_t length) {
  if (!holes.empty() && holes.back().offset + holes.back().length == offset) {
    holes.back().length += length;
  } else {
    holes.push_back({offset, length});
  }
}

// Bounds for the range queries, so a hostile page table cannot keep one call busy forever.
constexpr int kMaxNonRamMappings = 1 << 16;
constexpr int kMaxHoleSteps = 1 << 20;

}  // namespace

// The walker reads page tables through the driver's zero-copy mapping when it has one.
class Guest::DriverMemory : public PhysicalMemory {
 public:
  explicit DriverMemory(drivers::Driver& driver) : driver_(driver) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override {
    auto mapped = driver_.Mapped(pa);
    if (mapped.size() >= out.size()) {
      std::memcpy(out.data(), mapped.data(), out.size());
      return Status();
    }
    return driver_.ReadPhys(pa, out);
  }

 private:
  drivers::Driver& driver_;
};

Guest::Guest(std::unique_ptr<drivers::Driver> driver, const GuestOptions& options)
    : driver_(std::move(driver)),
      memory_(std::make_unique<DriverMemory>(*driver_)),
      tlb_(options.translation_cache_entries) {
  // Only for sources that cannot go away: a live driver must see each read (a VM that died
  // answers EIO, not the last bytes of its RAM file).
  for (const drivers::PhysRange& r :
       driver_->live() ? std::span<const drivers::PhysRange>() : driver_->ranges()) {
    auto mapped = driver_->Mapped(r.start);
    if (mapped.size() >= r.size() && r.size() > direct_.size()) {
      direct_ = mapped.first(r.size());
      direct_start_ = r.start;
    }
  }
}

Result<std::unique_ptr<Guest>> Guest::Create(std::unique_ptr<drivers::Driver> driver,
                                             const GuestOptions& options) {
  if (!driver) return InvalidArgumentError("no driver");
  std::unique_ptr<Guest> guest(new Guest(std::move(driver), options));
  guest->FindKernelPageTables();
  return guest;
}

// A vCPU that was in the kernel when the snapshot was taken (or any vCPU: the kernel half is
// in every Linux page table) gives the paging mode and a page-table root.
void Guest::FindKernelPageTables() {
  for (unsigned cpu = 0; cpu < driver_->vcpu_count(); ++cpu) {
    auto regs = driver_->Registers(cpu);
    if (!regs) continue;
    auto cr0 = regs->Get(Register::kCr0), cr3 = regs->Get(Register::kCr3);
    auto cr4 = regs->Get(Register::kCr4);
    if (!cr0 || !cr3 || !cr4) continue;
    auto mode = PagingModeFromRegisters(*cr0, *cr4, regs->Get(Register::kEfer).value_or(0));
    if (!mode) continue;
    mode_ = mode;
    kernel_dtb_ = DtbFromCr3(*mode, *cr3);
    kernel_dtb_source_ = "vCPU " + std::to_string(cpu) + " registers (CR0/CR3/CR4/EFER)";
    return;
  }
}

void Guest::SetKernelPageTables(PagingMode mode, uint64_t dtb, std::string source) {
  mode_ = mode;
  kernel_dtb_ = dtb;
  kernel_dtb_source_ = std::move(source);
  tlb_.Flush();
}

const drivers::PhysRange* Guest::RangeOf(uint64_t pa) const {
  auto r = ranges();
  auto it = std::upper_bound(r.begin(), r.end(), pa,
                             [](uint64_t a, const drivers::PhysRange& x) { return a < x.start; });
  if (it == r.begin()) return nullptr;
  --it;
  return pa < it->end ? &*it : nullptr;
}

Status Guest::WritePhys(uint64_t pa, std::span<const std::byte> in) {
  VMEMFS_TRY(driver_->WritePhys(pa, in));
  // A write may have changed a page table.
  tlb_.Flush();
  return Status();
}

Result<std::vector<Hole>> Guest::ZReadPhys(uint64_t pa, std::span<std::byte> out) {
  std::vector<Hole> holes;
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t addr = pa + done;
    uint64_t left = out.size() - done;
    if (addr < pa) {  // wrapped past 2^64
      std::memset(out.data() + done, 0, left);
      AddHole(holes, done, left);
      break;
    }
    const drivers::PhysRange* range = RangeOf(addr);
    uint64_t n;
    if (range) {
      n = std::min(left, range->end - addr);
      Status s = driver_->ReadPhys(addr, out.subspan(done, n));
      if (!s.ok() && !IsFault(s)) return s;
      if (!s.ok()) {
        std::memset(out.data() + done, 0, n);
        AddHole(holes, done, n);
      }
    } else {
      // Up to the next range, or to the end.
      auto r = ranges();
      auto next = std::find_if(r.begin(), r.end(),
                               [&](const drivers::PhysRange& x) { return x.start > addr; });
      n = next == r.end() ? left : std::min(left, next->start - addr);
      std::memset(out.data() + done, 0, n);
      AddHole(holes, done, n);
    }
    done += n;
  }
  return holes;
}

Result<PagingMode> Guest::RequireMode() const {
  if (!mode_) return UnsupportedError("the guest's paging mode is not known");
  return *mode_;
}

Result<Mapping> Guest::Translate(uint64_t dtb, uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(PagingMode mode, RequireMode());
  const bool caching = this->caching();
  if (caching) {
    if (auto hit = tlb_.Lookup(dtb, va)) return *hit;
  }
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, vmi::Translate(*memory_, mode, dtb, va));
  if (caching) tlb_.Insert(dtb, m);
  return m;
}

Result<uint64_t> Guest::TranslateKernel(uint64_t va) {
  if (!kernel_dtb_) return UnsupportedError("the kernel's page tables are not known");
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(*kernel_dtb_, va));
  return m.pa + (va - m.va);
}

Result<Guest::RamRun> Guest::TranslateToRam(uint64_t dtb, uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(dtb, va));
  uint64_t pa = m.pa + (va - m.va);
  const drivers::PhysRange* range = RangeOf(pa);
  if (!range) return FaultError(va, "virtual address maps outside RAM");
  return RamRun{pa, std::min(m.size - (va - m.va), range->end - pa)};
}

Status Guest::ReadVirtual(uint64_t dtb, uint64_t va, std::span<std::byte> out) {
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t addr = va + done;
    VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(dtb, addr));
    uint64_t in_page = addr - m.va;
    uint64_t n = std::min<uint64_t>(out.size() - done, m.size - in_page);
    Status s = driver_->ReadPhys(m.pa + in_page, out.subspan(done, n));
    if (IsFault(s)) return FaultError(addr, "virtual address maps outside RAM");
    VMEMFS_TRY(s);
    done += n;
  }
  return Status();
}

Status Guest::WriteVirtual(uint64_t dtb, uint64_t va, std::span<const std::byte> in) {
  uint64_t done = 0;
  while (done < in.size()) {
    uint64_t addr = va + done;
    VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(dtb, addr));
    uint64_t in_page = addr - m.va;
    uint64_t n = std::min<uint64_t>(in.size() - done, m.size - in_page);
    VMEMFS_TRY(driver_->WritePhys(m.pa + in_page, in.subspan(done, n)));
    done += n;
  }
  tlb_.Flush();
  return Status();
}

Status Guest::ReadKernel(uint64_t va, std::span<std::byte> out) {
  if (!kernel_dtb_) return UnsupportedError("the kernel's page tables are not known");
  return ReadVirtual(*kernel_dtb_, va, out);
}

Result<std::vector<Hole>> Guest::ZReadVirtual(uint64_t dtb, uint64_t va, std::span<std::byte> out) {
  VMEMFS_ASSIGN_OR_RETURN(PagingMode mode, RequireMode());
  std::vector<Hole> holes;
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t offset = VirtualToOffset(mode, va + done);
    VMEMFS_ASSIGN_OR_RETURN(auto runs, MapVirtualRange(dtb, offset, out.size() - done, 64));
    for (const VirtualRun& run : runs) {
      auto piece = out.subspan(done, run.length);
      Status s = run.pa ? driver_->ReadPhys(*run.pa, piece) : FaultError(0);
      if (!s.ok() && !IsFault(s)) return s;
      if (!s.ok()) {
        std::memset(piece.data(), 0, piece.size());
        AddHole(holes, done, piece.size());
      }
      done += run.length;
    }
  }
  return holes;
}

Result<std::vector<VirtualRun>> Guest::MapVirtualRange(uint64_t dtb, uint64_t offset,
                                                       uint64_t length, size_t max_runs) {
  VMEMFS_ASSIGN_OR_RETURN(PagingMode mode, RequireMode());
  const uint64_t space = AddressSpaceSize(mode);
  std::vector<VirtualRun> runs;
  uint64_t done = 0;
  while (done < length && runs.size() < max_runs) {
    uint64_t off = offset + done;
    if (off >= space) {  // past the address space: all hole
      runs.push_back({length - done, std::nullopt});
      break;
    }
    // Each run stays inside one page and one RAM range: one contiguous physical read.
    auto ram = TranslateToRam(dtb, OffsetToVirtual(mode, off));
    uint64_t n;
    std::optional<uint64_t> pa;
    if (ram) {
      n = ram->length;
      pa = ram->pa;
    } else if (IsFault(ram.error())) {
      n = 4096 - (off & 4095);
    } else {
      return ram.error();
    }
    n = std::min(n, length - done);
    if (!runs.empty() && !runs.back().pa && !pa) {
      runs.back().length += n;  // merge holes
    } else if (!runs.empty() && runs.back().pa && pa &&
               *runs.back().pa + runs.back().length == *pa) {
      runs.back().length += n;  // physically contiguous
    } else {
      runs.push_back({n, pa});
    }
    done += n;
  }
  return runs;
}

Result<std::optional<uint64_t>> Guest::NextDataOffset(uint64_t dtb, uint64_t offset) {
  VMEMFS_ASSIGN_OR_RETURN(PagingMode mode, RequireMode());
  const uint64_t space = AddressSpaceSize(mode);
  for (int i = 0; i < kMaxNonRamMappings && offset < space; ++i) {
    VMEMFS_ASSIGN_OR_RETURN(auto m, NextMapping(*memory_, mode, dtb, offset, space));
    if (!m) return std::optional<uint64_t>();
    uint64_t start = std::max(offset, VirtualToOffset(mode, m->va));
    uint64_t end = VirtualToOffset(mode, m->va) + m->size;
    // Data only where the page is RAM; a page may straddle the end of a range.
    for (uint64_t o = start; o < end;) {
      uint64_t pa = m->pa + (o - VirtualToOffset(mode, m->va));
      if (RangeOf(pa)) return std::optional<uint64_t>(o);
      o = (o | 4095) + 1;
    }
    offset = end;
  }
  if (offset >= space) return std::optional<uint64_t>();
  return BadDataError("too many page mappings outside RAM while looking for data");
}

Result<uint64_t> Guest::NextHoleOffset(uint64_t dtb, uint64_t offset) {
  VMEMFS_ASSIGN_OR_RETURN(PagingMode mode, RequireMode());
  const uint64_t space = AddressSpaceSize(mode);
  for (int i = 0; i < kMaxHoleSteps && offset < space; ++i) {
    auto ram = TranslateToRam(dtb, OffsetToVirtual(mode, offset));
    if (!ram) {
      if (IsFault(ram.error())) return offset;
      return ram.error();
    }
    offset += ram->length;  // to the end of the page, or of the RAM range if that comes first
  }
  // Too long a run of data to scan: the end of the file is always a valid hole.
  return space;
}

Result<drivers::RegisterSet> Guest::Registers(unsigned vcpu) {
  if (vcpu >= driver_->vcpu_count()) return NotFoundError("no vCPU " + std::to_string(vcpu));
  return driver_->Registers(vcpu);
}

Result<uint64_t> Guest::GetVcpuRegister(drivers::Register reg, unsigned vcpu) {
  VMEMFS_ASSIGN_OR_RETURN(drivers::RegisterSet regs, Registers(vcpu));
  auto v = regs.Get(reg);
  if (!v) {
    return NotFoundError("vCPU " + std::to_string(vcpu) + " has no " +
                         std::string(drivers::RegisterName(reg)));
  }
  return *v;
}

Status Guest::Pause() {
  VMEMFS_TRY(driver_->Pause());
  tlb_.Flush();  // translations cached from now on are valid until Resume
  paused_ = true;
  return Status();
}

Status Guest::Resume() {
  paused_ = false;  // first: no translation may be cached while it runs
  VMEMFS_TRY(driver_->Resume());
  tlb_.Flush();
  return Status();
}

}  // namespace vmemfs::vmi
