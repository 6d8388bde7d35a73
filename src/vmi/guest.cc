#include "vmi/guest.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/hex.h"
#include "vmi/os_registry.h"

namespace vmemfs::vmi {
namespace {

using drivers::Register;
using Clock = Freshness::Clock;

bool IsFault(const Status& s) { return s.code() == ErrorCode::kFault; }

// Appends a hole, merging it with the previous one when adjacent.
void AddHole(std::vector<Hole>& holes, uint64_t offset, uint64_t length) {
  if (!holes.empty() && holes.back().offset + holes.back().length == offset) {
    holes.back().length += length;
  } else {
    holes.push_back({offset, length});
  }
}

// Appends a run, merging it with the previous one when they continue each other.
void AddRun(std::vector<MemoryRun>& runs, const MemoryRun& run) {
  if (!runs.empty()) {
    MemoryRun& last = runs.back();
    bool continues = last.kind == run.kind && (run.kind == MemoryRun::Kind::kHole ||
                                               last.pa + last.length == run.pa);
    if (continues && run.kind == MemoryRun::Kind::kFile) {
      continues = last.fd == run.fd && last.file_offset + last.length == run.file_offset;
    }
    if (continues && run.kind == MemoryRun::Kind::kMapped) {
      continues = last.data + last.length == run.data;
    }
    if (continues) {
      last.length += run.length;
      return;
    }
  }
  runs.push_back(run);
}

// Bounds for the range queries, so a hostile page table cannot keep one call busy forever.
constexpr int kMaxNonRamMappings = 1 << 16;
constexpr int kMaxHoleSteps = 1 << 20;
// vCPUs whose registers are read for kernel roots: enough to find one in the kernel's tables,
// few enough that a 256-vCPU VM does not cost 256 monitor commands per check.
constexpr unsigned kMaxRootVcpus = 4;
// PTI gives every process an 8 KiB pair of top-level tables: the kernel's first, the user's
// (which maps almost nothing of the kernel) 4 KiB above it.
constexpr uint64_t kPtiUserTableBit = 0x1000;

std::string Seconds(Clock::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

}  // namespace

// The walker reads page tables through the driver's zero-copy mapping when it has one.
class Guest::DriverMemory : public PhysicalMemory {
 public:
  explicit DriverMemory(drivers::Driver& driver) : driver_(driver) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override {
    auto mapped = driver_.Mapped(pa);
    if (mapped.size() >= out.size()) {
      std::memcpy(out.data(), mapped.data(), out.size());
      if (drivers::MappingsUntouched()) return Status();
    }
    return driver_.ReadPhys(pa, out);
  }

 private:
  drivers::Driver& driver_;
};

Guest::Guest(std::unique_ptr<drivers::Driver> driver, drivers::PhysMap<> ram, GuestOptions options)
    : driver_(std::move(driver)),
      options_(std::move(options)),
      live_(driver_->live()),
      ram_(std::move(ram)),
      memory_(std::make_unique<DriverMemory>(*driver_)),
      tlb_(options_.translation_cache_entries),
      freshness_(live_) {
  // Only for sources that cannot go away: a live driver must see each read (a VM that died
  // answers EIO, not the last bytes of its RAM file).
  for (const drivers::PhysRange& r :
       live_ ? std::span<const drivers::PhysRange>() : driver_->ranges()) {
    auto mapped = driver_->Mapped(r.start);
    if (mapped.size() >= r.size() && r.size() > direct_.size()) {
      direct_ = mapped.first(r.size());
      direct_start_ = r.start;
    }
  }
}

Guest::~Guest() = default;

Result<std::unique_ptr<Guest>> Guest::Open(std::unique_ptr<drivers::Driver> driver,
                                           GuestOptions options) {
  if (!driver) return InvalidArgumentError("no driver");
  VMEMFS_ASSIGN_OR_RETURN(auto ram, drivers::PhysMap<>::FromRanges(driver->ranges()));
  return std::unique_ptr<Guest>(new Guest(std::move(driver), std::move(ram), std::move(options)));
}

// --- The source ---

bool Guest::writable() const { return driver_->writable(); }

std::optional<drivers::RunState> Guest::State() { return driver_->State(); }

std::optional<std::string> Guest::CarriedVmcoreInfo() const { return driver_->VmcoreInfo(); }

std::vector<Fact> Guest::Describe() {
  std::vector<Fact> facts;
  facts.push_back({"driver", std::string(driver_->kind()), ""});
  for (Fact& fact : driver_->Describe()) facts.push_back(std::move(fact));
  facts.push_back({"live", live_ ? "yes" : "no", ""});
  if (auto state = State()) facts.push_back({"state", std::string(drivers::RunStateName(*state)), ""});
  facts.push_back({"writable", writable() ? "yes" : "no", ""});
  uint64_t ram = 0;
  for (const auto& r : ranges()) ram += r.size();
  facts.push_back({"memory-size", Hex(memory_size()), ""});
  facts.push_back({"ram-bytes", std::to_string(ram), ""});
  facts.push_back({"ram-ranges", std::to_string(ranges().size()), ""});
  for (const auto& r : ranges()) {
    facts.push_back({"ram-range", fmt::format("0x{:x}-0x{:x}", r.start, r.end - 1), ""});
  }
  for (const drivers::RomRange& r : driver_->rom()) {
    facts.push_back({"rom-range", fmt::format("0x{:x}-0x{:x}", r.start, r.end - 1),
                     r.how + (r.in_ranges ? "; readable in pmem (RAM above it)"
                                          : "; not in pmem (no RAM above it)")});
  }
  facts.push_back({"vcpus", std::to_string(vcpu_count()), ""});
  facts.push_back({"vmcoreinfo-in-source", CarriedVmcoreInfo() ? "yes" : "no", ""});
  std::shared_ptr<const KernelView> kernel = Kernel();
  facts.insert(facts.end(), kernel->facts.begin(), kernel->facts.end());
  if (kernel->os) {
    std::vector<Fact> os = kernel->os->Describe();
    facts.insert(facts.end(), os.begin(), os.end());
  } else if (live_ && State() != drivers::RunState::kGone) {
    facts.push_back({"os", "none yet, looking again in " + Seconds(freshness_.RetryIn(Clock::now())),
                     ""});
  }
  return facts;
}

// --- Physical memory ---

Status Guest::WritePhys(uint64_t pa, std::span<const std::byte> in) {
  VMEMFS_TRY(driver_->WritePhys(pa, in));
  // A write may have changed a page table.
  DropTranslations();
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
    const drivers::PhysRun<>* range = ram_.FindAtOrAfter(addr);
    uint64_t n;
    if (range && range->contains(addr)) {
      n = std::min(left, range->end - addr);
      Status s = driver_->ReadPhys(addr, out.subspan(done, n));
      if (!s.ok() && !IsFault(s)) return s;
      if (!s.ok()) {
        std::memset(out.data() + done, 0, n);
        AddHole(holes, done, n);
      }
    } else {
      // Up to the next range, or to the end.
      n = range == nullptr ? left : std::min(left, range->start - addr);
      std::memset(out.data() + done, 0, n);
      AddHole(holes, done, n);
    }
    done += n;
  }
  return holes;
}

// Prefers a splice from the driver's file, then a view of its mapping (only for sources that
// cannot change or go away: a live VM's bytes must be read when asked for), then a copy.
std::vector<MemoryRun> Guest::PlanPhysical(uint64_t pa, uint64_t length) const {
  std::vector<MemoryRun> runs;
  const uint64_t end = pa + std::min(length, UINT64_MAX - pa);
  for (const drivers::PhysRange& r : ranges()) {
    if (r.end <= pa) continue;
    if (r.start >= end) break;
    if (r.start > pa) AddRun(runs, {MemoryRun::Kind::kHole, r.start - pa});
    pa = std::max(r.start, pa);
    while (pa < std::min(end, r.end)) {
      uint64_t left = std::min(end, r.end) - pa;
      MemoryRun run{MemoryRun::Kind::kCopy, left, pa};
      if (auto extent = driver_->FileBacked(pa); extent && extent->length > 0) {
        run = {MemoryRun::Kind::kFile, std::min(left, extent->length), pa, extent->fd,
               extent->offset};
      } else if (auto mapped = driver_->Mapped(pa); !mapped.empty() && !live_) {
        run = {MemoryRun::Kind::kMapped, std::min<uint64_t>(left, mapped.size()), pa};
        run.data = mapped.data();
      }
      AddRun(runs, run);
      pa += run.length;
    }
  }
  if (pa < end) AddRun(runs, {MemoryRun::Kind::kHole, end - pa});
  return runs;
}

// --- Virtual memory ---

Result<Mapping> Guest::Translate(const AddressSpace& space, uint64_t va) {
  const uint64_t epoch = tlb_epoch_.load(std::memory_order_acquire);
  const bool caching = this->caching();
  if (caching) {
    if (auto hit = tlb_.Lookup(space.root, va)) return *hit;
  }
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, vmi::Translate(*memory_, space.mode, space.root, va));
  if (caching && epoch == tlb_epoch_.load(std::memory_order_acquire)) tlb_.Insert(space.root, m);
  return m;
}

Guest::Batch::Batch(Guest& guest) : guest_(guest), held_(guest.driver_->BeginBatch()) {
  if (held_) guest_.holds_.fetch_add(1, std::memory_order_acq_rel);
}

Guest::Batch::~Batch() {
  if (held_ && guest_.holds_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !guest_.paused_) {
    guest_.DropTranslations();  // the VM runs again
  }
  guest_.driver_->EndBatch();
}

void Guest::DropTranslations() {
  tlb_epoch_.fetch_add(1, std::memory_order_acq_rel);
  tlb_.Flush();
}

Result<Guest::RamRun> Guest::TranslateToRam(const AddressSpace& space, uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(space, va));
  uint64_t pa = m.pa + (va - m.va);
  const drivers::PhysRun<>* range = RangeOf(pa);
  if (!range) return FaultError(va, "virtual address maps outside RAM");
  return RamRun{pa, std::min(m.size - (va - m.va), range->end - pa)};
}

Status Guest::ReadVirtual(const AddressSpace& space, uint64_t va, std::span<std::byte> out) {
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t addr = va + done;
    VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(space, addr));
    uint64_t in_page = addr - m.va;
    uint64_t n = std::min<uint64_t>(out.size() - done, m.size - in_page);
    Status s = ReadPhys(m.pa + in_page, out.subspan(done, n));
    if (IsFault(s)) return FaultError(addr, "virtual address maps outside RAM");
    VMEMFS_TRY(s);
    done += n;
  }
  return Status();
}

Status Guest::WriteVirtual(const AddressSpace& space, uint64_t va,
                           std::span<const std::byte> in) {
  uint64_t done = 0;
  while (done < in.size()) {
    uint64_t addr = va + done;
    VMEMFS_ASSIGN_OR_RETURN(Mapping m, Translate(space, addr));
    uint64_t in_page = addr - m.va;
    uint64_t n = std::min<uint64_t>(in.size() - done, m.size - in_page);
    VMEMFS_TRY(driver_->WritePhys(m.pa + in_page, in.subspan(done, n)));
    done += n;
  }
  DropTranslations();
  return Status();
}

Result<std::vector<Hole>> Guest::ZReadVirtual(const AddressSpace& space, uint64_t va,
                                              std::span<std::byte> out) {
  std::vector<Hole> holes;
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t offset = VirtualToOffset(space.mode, va + done);
    VMEMFS_ASSIGN_OR_RETURN(auto runs, PlanVirtual(space, offset, out.size() - done, 64));
    for (const MemoryRun& run : runs) {
      auto piece = out.subspan(done, run.length);
      Status s = run.kind == MemoryRun::Kind::kHole ? FaultError(0) : ReadPhys(run.pa, piece);
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

Result<std::vector<MemoryRun>> Guest::PlanVirtual(const AddressSpace& space, uint64_t offset,
                                                  uint64_t length, size_t max_runs) {
  const uint64_t size = AddressSpaceSize(space.mode);
  Batch batch(*this);
  std::vector<MemoryRun> runs;
  uint64_t done = 0;
  while (done < length && runs.size() < max_runs) {
    uint64_t off = offset + done;
    if (off >= size || off < offset) {  // past the address space: all hole
      AddRun(runs, {MemoryRun::Kind::kHole, length - done});
      break;
    }
    // Each step stays inside one page and one RAM range: one contiguous physical piece.
    auto ram = TranslateToRam(space, OffsetToVirtual(space.mode, off));
    uint64_t n;
    if (ram) {
      n = std::min(ram->length, length - done);
      for (const MemoryRun& run : PlanPhysical(ram->pa, n)) AddRun(runs, run);
    } else if (IsFault(ram.error())) {
      n = std::min<uint64_t>(4096 - (off & 4095), length - done);
      AddRun(runs, {MemoryRun::Kind::kHole, n});
    } else {
      return ram.error();
    }
    done += n;
  }
  return runs;
}

Result<std::optional<uint64_t>> Guest::NextDataOffset(const AddressSpace& space, uint64_t offset) {
  const uint64_t size = AddressSpaceSize(space.mode);
  Batch batch(*this);
  for (int i = 0; i < kMaxNonRamMappings && offset < size; ++i) {
    VMEMFS_ASSIGN_OR_RETURN(auto m, NextMapping(*memory_, space.mode, space.root, offset, size));
    if (!m) return std::optional<uint64_t>();
    uint64_t start = std::max(offset, VirtualToOffset(space.mode, m->va));
    uint64_t end = VirtualToOffset(space.mode, m->va) + m->size;
    // Data only where the page is RAM; a page may straddle the end of a range.
    for (uint64_t o = start; o < end;) {
      uint64_t pa = m->pa + (o - VirtualToOffset(space.mode, m->va));
      if (RangeOf(pa)) return std::optional<uint64_t>(o);
      o = (o | 4095) + 1;
    }
    offset = end;
  }
  if (offset >= size) return std::optional<uint64_t>();
  return BadDataError("too many page mappings outside RAM while looking for data");
}

Result<uint64_t> Guest::NextHoleOffset(const AddressSpace& space, uint64_t offset) {
  const uint64_t size = AddressSpaceSize(space.mode);
  Batch batch(*this);
  for (int i = 0; i < kMaxHoleSteps && offset < size; ++i) {
    auto ram = TranslateToRam(space, OffsetToVirtual(space.mode, offset));
    if (!ram) {
      if (IsFault(ram.error())) return offset;
      return ram.error();
    }
    offset += ram->length;  // to the end of the page, or of the RAM range if that comes first
  }
  // Too long a run of data to scan: the end of the file is always a valid hole.
  return size;
}

// --- The kernel ---

std::vector<RootCandidate> Guest::RegisterRoots() {
  std::vector<RootCandidate> roots;
  auto add = [&roots](AddressSpace space, std::string source) {
    for (const RootCandidate& r : roots) {
      if (r.space == space) return;
    }
    roots.push_back({space, std::move(source)});
  };
  for (unsigned cpu = 0; cpu < std::min(vcpu_count(), kMaxRootVcpus); ++cpu) {
    auto regs = driver_->Registers(cpu);
    if (!regs) continue;
    auto cr0 = regs->Get(Register::kCr0), cr3 = regs->Get(Register::kCr3);
    auto cr4 = regs->Get(Register::kCr4);
    if (!cr0 || !cr3 || !cr4) continue;
    auto mode = PagingModeFromRegisters(*cr0, *cr4, regs->Get(Register::kEfer).value_or(0));
    if (!mode) continue;  // paging off: firmware, or a kernel not yet started
    uint64_t root = DtbFromCr3(*mode, *cr3);
    std::string source = "vCPU " + std::to_string(cpu) + " registers (CR0/CR3/CR4/EFER)";
    if (*mode == PagingMode::kIa32e4 || *mode == PagingMode::kIa32e5) {
      add({*mode, root & ~kPtiUserTableBit}, source);
    }
    add({*mode, root}, source);
  }
  return roots;
}

std::shared_ptr<const KernelView> Guest::FindKernel(const std::vector<RootCandidate>& roots) {
  auto view = std::make_shared<KernelView>();
  Result<FoundOs> found = NotFoundError("no operating system is looked for");
  if (options_.os_finders) {
    OsSearch search{*this, roots, [this] { return freshness_.MayScanAllRam(Clock::now()); }};
    found = options_.os_finders->Find(search);
  }
  if (found) {
    view->space = found->kernel;
    view->os = std::move(found->os);
    view->facts.push_back({"kernel-dtb", Hex(found->kernel.root), found->kernel_how});
  } else {
    if (!roots.empty()) {
      view->space = roots.front().space;
      view->facts.push_back({"kernel-dtb", Hex(roots.front().space.root), roots.front().source});
    }
    // A live VM's search goes on (Describe says when); a snapshot's answer is final.
    view->facts.push_back({live_ ? "os-search" : "os", live_ ? "nothing found yet" : "not recognised",
                           found.error().message()});
  }
  if (view->space) {
    view->facts.insert(view->facts.begin(),
                       {"page-mode", std::string(PagingModeName(view->space->mode)), ""});
    view->facts.push_back({"kmem-size", Hex(AddressSpaceSize(view->space->mode)), ""});
  } else {
    view->facts.insert(view->facts.begin(),
                       {"page-mode", "unknown", "no registers with paging on and no kernel found; no kmem"});
  }
  return view;
}

// Same kernel: keep the view. No kernel or another one: look for one now.
std::shared_ptr<const KernelView> Guest::CheckKernel(std::shared_ptr<const KernelView> current) {
  if (current && current->os) {
    Result<bool> still = current->os->StillRunning();
    if (still && *still) {
      freshness_.KernelChecked(true, Clock::now());
      return LookAgainIfIncomplete(std::move(current));
    }
  }
  std::shared_ptr<const KernelView> next = FindKernel(RegisterRoots());
  freshness_.KernelChecked(next->os != nullptr, Clock::now());
  return next;
}

// The same kernel, found with parts missing (Os::MissingParts): on the freshness rule's
// schedule, a new look replaces it if that misses fewer.
std::shared_ptr<const KernelView> Guest::LookAgainIfIncomplete(
    std::shared_ptr<const KernelView> current) {
  const int missing = current->os->MissingParts();
  if (missing == 0 || !freshness_.IncompleteRecheckDue(Clock::now())) return current;
  std::shared_ptr<const KernelView> next = FindKernel(RegisterRoots());
  if (!next->os || next->os->MissingParts() >= missing) return current;
  return next;
}

void Guest::Publish(std::shared_ptr<const KernelView> view) {
  std::lock_guard lock(view_mu_);
  view_ = std::move(view);
}

std::shared_ptr<const KernelView> Guest::Kernel() {
  std::shared_ptr<const KernelView> current;
  {
    std::lock_guard lock(view_mu_);
    current = view_;
  }
  if (current && !freshness_.KernelCheckDue(Clock::now())) return current;
  std::unique_lock check(check_mu_, std::try_to_lock);
  if (!check.owns_lock()) {
    if (current) return current;  // another thread is checking; its answer follows shortly
    check.lock();
    std::lock_guard lock(view_mu_);
    current = view_;
    if (current && !freshness_.KernelCheckDue(Clock::now())) return current;
  }
  Batch batch(*this);
  std::shared_ptr<const KernelView> next = CheckKernel(current);
  if (next == current) return current;
  // Another kernel (or none any more, or the first one): everything derived from the old one
  // is stale. A recheck that found nothing again keeps its id, so directories stay.
  bool same = current && !current->os && !next->os &&
              current->space.has_value() == next->space.has_value() &&
              (!current->space || current->space->mode == next->space->mode);
  auto view = std::const_pointer_cast<KernelView>(next);
  view->id = same ? current->id : next_view_id_++;
  if (!same) {
    DropTranslations();
    freshness_.Bump();
  }
  Publish(view);
  return view;
}

// --- Freshness ---

uint64_t Guest::generation() { return freshness_.Generation(live_ && !paused_); }

void Guest::Flush() {
  DropTranslations();
  freshness_.Bump();
  freshness_.ForceKernelCheck();
}

// --- vCPUs and control ---

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

Status Guest::SetVcpuRegister(drivers::Register reg, unsigned vcpu, uint64_t value) {
  if (vcpu >= driver_->vcpu_count()) return NotFoundError("no vCPU " + std::to_string(vcpu));
  VMEMFS_TRY(driver_->SetRegister(vcpu, reg, value));
  DropTranslations();  // CR3 and friends change what translates where
  return Status();
}

Status Guest::Pause() {
  VMEMFS_TRY(driver_->Pause());
  DropTranslations();  // translations cached from now on are valid until Resume
  paused_ = true;
  return Status();
}

Status Guest::Resume() {
  paused_ = false;  // first: no translation may be cached while it runs
  VMEMFS_TRY(driver_->Resume());
  DropTranslations();
  freshness_.Bump();
  return Status();
}

}  // namespace vmemfs::vmi
