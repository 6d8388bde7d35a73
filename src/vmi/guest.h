// A guest: one memory source plus everything vmemfs knows about it. The introspection API, and
// the one wall between the filesystem and the drivers: src/fs talks to a Guest, never to a
// driver.
//
// This is the seed's API (LibVMI, Figure 4) as C++: read/write by physical and virtual
// address, virtual to physical translation, memory size, vCPU registers, pause/resume and
// cache flush, plus a zero-filling read that reports holes, read plans (which bytes can be
// spliced from a file, viewed in place or must be copied) and the range queries the filesystem
// needs (SEEK_DATA/SEEK_HOLE).
//
// The guest's kernel and operating system are found by Kernel(), lazily and again whenever the
// freshness rule (freshness.h) says so: a live guest may boot, reboot or change kernels while
// mounted.
//
// Thread safety: every method may be called from many threads at once.
#ifndef VMEMFS_VMI_GUEST_H_
#define VMEMFS_VMI_GUEST_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/file_watch.h"
#include "drivers/phys_map.h"
#include "vmi/freshness.h"
#include "vmi/os.h"
#include "vmi/paging.h"
#include "vmi/translation_cache.h"

namespace vmemfs::vmi {

class OsFinders;  // os_registry.h

struct GuestOptions {
  // Translation cache entries. Default: 16384.
  size_t translation_cache_entries = 16384;
  // How operating systems are recognised (os_registry.h). Null: none is looked for.
  std::shared_ptr<const OsFinders> os_finders;
};

// A byte range of a zero-filling read that could not be read: [offset, offset + length)
// relative to the start of the read.
struct Hole {
  uint64_t offset;
  uint64_t length;
  bool operator==(const Hole&) const = default;
};

// How `length` bytes of a planned read are served.
struct MemoryRun {
  enum class Kind {
    kFile,    // `length` bytes at `file_offset` of `fd`: splice them (the fd lives as the guest)
    kMapped,  // `length` bytes at `data`, valid as long as the guest
    kCopy,    // RAM at physical `pa` that must be read (ReadPhys)
    kHole,    // not RAM, or not mapped: zeros
  };
  Kind kind;
  uint64_t length;
  uint64_t pa = 0;  // kFile, kMapped, kCopy
  int fd = -1;
  uint64_t file_offset = 0;
  const std::byte* data = nullptr;
};

// A page-table root worth trying for the kernel, with where it came from.
struct RootCandidate {
  AddressSpace space;
  std::string source;  // "vCPU 0 registers (CR0/CR3/CR4/EFER)"
};

// What vmemfs knows of the guest's running kernel at one moment. Immutable: when the guest
// boots another kernel, Kernel() hands out a new view and the old one keeps working for whoever
// holds it (its reads may then fail or show the new kernel's memory).
struct KernelView {
  // The kernel's page tables (kmem); nullopt when not known.
  std::optional<AddressSpace> space;
  // The recognised OS; null when none is (yet).
  std::shared_ptr<OperatingSystem> os;
  // How space and os were found, what failed, when vmemfs looks again.
  std::vector<Fact> facts;
  // Different for every view a Guest makes while the kernel changes (not for rechecks that
  // found the same kernel).
  uint64_t id = 0;
};

class Guest {
 public:
  // Takes ownership of the driver. Reads nothing: the kernel is looked for at first use.
  static Result<std::unique_ptr<Guest>> Open(std::unique_ptr<drivers::Driver> driver,
                                             GuestOptions options = {});
  ~Guest();

  // --- The source ---
  // True if memory can change while we look (a running VM, not a snapshot).
  bool live() const { return live_; }
  // True if the source's bytes may change while we look: a live VM, or a snapshot file that
  // another program may change (Driver::may_change). What is generated from such a source is
  // made again at every look.
  bool may_change() const { return live_ || driver_->may_change(); }
  // True if writes can reach the source (opened --write-memory, and the backend can write).
  bool writable() const;
  // A live VM's state; nullopt for snapshots.
  std::optional<drivers::RunState> State();
  // The VMCOREINFO text the source carries (an ELF core's note), if any.
  std::optional<std::string> CarriedVmcoreInfo() const;
  // Everything known about this guest, in `info` order: the source, RAM, vCPUs, the kernel and
  // its OS (runs the freshness rule, like Kernel()).
  std::vector<Fact> Describe();

  // --- Physical memory (vmi_read_pa, vmi_write_pa, vmi_get_memsize) ---
  // Reads exactly out.size() bytes; kFault (address() = first missing byte) outside RAM.
  // Inline fast path for the largest RAM range the driver holds mapped (most of RAM): a copy,
  // good unless a mapped file was touched meanwhile (then the driver reads and checks).
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) {
    uint64_t off = pa - direct_start_;
    if (off < direct_.size() && out.size() <= direct_.size() - off) {
      std::memcpy(out.data(), direct_.data() + off, out.size());
      if (drivers::MappingsUntouched()) return Status();
    }
    return driver_->ReadPhys(pa, out);
  }
  Status WritePhys(uint64_t pa, std::span<const std::byte> in);
  // Reads what is RAM, zero-fills the rest; errors only for failures other than faults.
  Result<std::vector<Hole>> ZReadPhys(uint64_t pa, std::span<std::byte> out);
  // Highest RAM address + 1.
  uint64_t memory_size() const { return driver_->end_address(); }
  std::span<const drivers::PhysRange> ranges() const { return ram_.ranges(); }
  // The RAM range holding `pa`, or nullptr.
  const drivers::PhysRun<>* RangeOf(uint64_t pa) const { return ram_.Find(pa); }
  // Guest-physical memory as the page-table walker reads it (zero copy where the source maps
  // it), for walks through tables no address space names yet.
  PhysicalMemory& physical() { return *memory_; }
  // How to serve [pa, pa + length): file extents, mapped spans, copies, holes. Every byte of
  // the range is covered, in order.
  std::vector<MemoryRun> PlanPhysical(uint64_t pa, uint64_t length) const;

  // --- Virtual memory ---
  // Translates through `space` (vmi_translate_uv2p/kv2p); cached while the guest cannot
  // change. kFault when unmapped.
  Result<Mapping> Translate(const AddressSpace& space, uint64_t va);
  // vmi_read_va: exactly out.size() bytes or an error (kFault at the first unreadable VA).
  Status ReadVirtual(const AddressSpace& space, uint64_t va, std::span<std::byte> out);
  Status WriteVirtual(const AddressSpace& space, uint64_t va, std::span<const std::byte> in);
  // Zero-filling read of a virtual range.
  Result<std::vector<Hole>> ZReadVirtual(const AddressSpace& space, uint64_t va,
                                         std::span<std::byte> out);
  // How to serve the file-offset range [offset, offset + length) of `space` (offsets as
  // VirtualToOffset). At most max_runs runs; they cover a prefix of the range when the limit
  // is reached, the whole range otherwise.
  Result<std::vector<MemoryRun>> PlanVirtual(const AddressSpace& space, uint64_t offset,
                                             uint64_t length, size_t max_runs);
  // SEEK_DATA / SEEK_HOLE over `space`, by file offset. NextData returns nullopt when there is
  // no data at or after `offset`; NextHole always answers (AddressSpaceSize is a hole).
  Result<std::optional<uint64_t>> NextDataOffset(const AddressSpace& space, uint64_t offset);
  Result<uint64_t> NextHoleOffset(const AddressSpace& space, uint64_t offset);

  // --- The kernel and its operating system ---
  // The current view, found or checked again as the freshness rule says (freshness.h): for a
  // snapshot once; for a live VM a found kernel is checked when its last check is older than
  // a second, and while none is found the search is retried with a backoff.
  std::shared_ptr<const KernelView> Kernel();

  // --- Freshness ---
  // Changes whenever anything derived from guest state may have changed: for a snapshot only
  // on Flush; for a live VM on Resume, Flush, a kernel change and, while it runs, every second.
  uint64_t generation();
  // Drops every cached translation and makes the next Kernel() check the kernel at once
  // (`ctl flush`).
  void Flush();

  // --- vCPUs and control ---
  unsigned vcpu_count() const { return driver_->vcpu_count(); }
  // kNotFound for a vCPU that does not exist. Live sources read the registers now.
  Result<drivers::RegisterSet> Registers(unsigned vcpu);
  // vmi_get_vcpureg.
  Result<uint64_t> GetVcpuRegister(drivers::Register reg, unsigned vcpu);
  // vmi_set_vcpureg: where the source can (kUnsupported otherwise).
  Status SetVcpuRegister(drivers::Register reg, unsigned vcpu, uint64_t value);
  Status Pause();
  Status Resume();
  // Reads that belong together, for as long as it lives (Driver::BeginBatch): a source whose
  // every read stops the VM stops it once for the batch.
  class Batch {
   public:
    explicit Batch(Guest& guest);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    Guest& guest_;
    bool held_;  // the source holds the VM still while this batch lives
  };

  // Page-table roots from the first vCPUs' registers, read now (a live VM's registers change):
  // the kernel's tables are in every root of a Linux guest. Empty without registers or while
  // paging is off (firmware, a reset).
  std::vector<RootCandidate> RegisterRoots();

 private:
  class DriverMemory;  // PhysicalMemory over the driver
  Guest(std::unique_ptr<drivers::Driver> driver, drivers::PhysMap<> ram, GuestOptions options);
  // Translations may be cached while the guest cannot change them: a snapshot, a live VM
  // paused by vmemfs, or held still for a batch.
  bool caching() const {
    return !live_ || paused_.load(std::memory_order_relaxed) ||
           holds_.load(std::memory_order_acquire) > 0;
  }
  // The RAM bytes `va` maps to: the physical address and how many bytes from there are both
  // in va's page and in one RAM range. kFault if va is unmapped or maps outside RAM.
  struct RamRun {
    uint64_t pa;
    uint64_t length;
  };
  Result<RamRun> TranslateToRam(const AddressSpace& space, uint64_t va);
  // Drops every cached translation, including those being made now.
  void DropTranslations();
  // One check of the kernel (freshness.h); returns the view to publish.
  std::shared_ptr<const KernelView> CheckKernel(std::shared_ptr<const KernelView> current);
  std::shared_ptr<const KernelView> LookAgainIfIncomplete(std::shared_ptr<const KernelView> current);
  std::shared_ptr<const KernelView> FindKernel(const std::vector<RootCandidate>& roots);
  void Publish(std::shared_ptr<const KernelView> view);

  const std::unique_ptr<drivers::Driver> driver_;
  const GuestOptions options_;
  const bool live_;
  const drivers::PhysMap<> ram_;  // the driver's RAM ranges
  // The largest RAM range that the driver maps whole, at guest-physical direct_start_.
  std::span<const std::byte> direct_;
  uint64_t direct_start_ = 0;
  std::unique_ptr<PhysicalMemory> memory_;
  TranslationCache tlb_;
  std::atomic<bool> paused_{false};  // by our own Pause(); a live VM may also be paused by others
  std::atomic<int> holds_{0};        // batches during which the source holds the VM still
  // Moves whenever cached translations are dropped because the VM may run again: a walk that
  // began before does not insert what it found.
  std::atomic<uint64_t> tlb_epoch_{0};
  Freshness freshness_;

  std::mutex check_mu_;  // held while the kernel is checked or looked for
  mutable std::mutex view_mu_;
  std::shared_ptr<const KernelView> view_;  // GUARDED_BY(view_mu_); null until first found
  uint64_t next_view_id_ = 1;               // GUARDED_BY(check_mu_)
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_GUEST_H_
