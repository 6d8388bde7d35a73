// A guest: one memory source plus everything vmemfs knows about it. The introspection API.
//
// This is the seed's API (LibVMI, Figure 4) as C++: read/write by physical and virtual
// address, kernel/user virtual to physical translation, memory size, vCPU registers,
// pause/resume and translation-cache flush, plus a zero-filling read that reports holes and
// the range queries the filesystem needs (SEEK_DATA/SEEK_HOLE, zero-copy runs).
//
// Thread safety: every method may be called from many threads at once. The facts found at
// Create() (paging mode, kernel page-table root) never change afterwards.
#ifndef VMEMFS_VMI_GUEST_H_
#define VMEMFS_VMI_GUEST_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "vmi/paging.h"
#include "vmi/translation_cache.h"

namespace vmemfs::vmi {

struct GuestOptions {
  // Translation cache entries. Default: 16384.
  size_t translation_cache_entries = 16384;
};

// A byte range of a zero-filling read that could not be read: [offset, offset + length)
// relative to the start of the read.
struct Hole {
  uint64_t offset;
  uint64_t length;
  bool operator==(const Hole&) const = default;
};

// A piece of a virtual range: `length` bytes that are either backed by guest-physical RAM at
// `pa` or are a hole (unmapped, or mapped to something that is not RAM).
struct VirtualRun {
  uint64_t length;
  std::optional<uint64_t> pa;
};

class Guest {
 public:
  // Takes ownership of the driver. Finds the kernel's paging mode and page-table root from the
  // first vCPU's registers when the source has them.
  static Result<std::unique_ptr<Guest>> Create(std::unique_ptr<drivers::Driver> driver,
                                               const GuestOptions& options = {});

  drivers::Driver& driver() { return *driver_; }
  const drivers::Driver& driver() const { return *driver_; }

  // --- Physical memory (vmi_read_pa, vmi_write_pa, vmi_get_memsize) ---
  // Reads exactly out.size() bytes; kFault (address() = first missing byte) outside RAM.
  // Inline fast path for the largest RAM range the driver holds mapped (most of RAM).
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) {
    uint64_t off = pa - direct_start_;
    if (off < direct_.size() && out.size() <= direct_.size() - off) {
      std::memcpy(out.data(), direct_.data() + off, out.size());
      return Status();
    }
    return driver_->ReadPhys(pa, out);
  }
  Status WritePhys(uint64_t pa, std::span<const std::byte> in);
  // Reads what is RAM, zero-fills the rest; errors only for failures other than faults.
  Result<std::vector<Hole>> ZReadPhys(uint64_t pa, std::span<std::byte> out);
  // Highest RAM address + 1.
  uint64_t memory_size() const { return driver_->end_address(); }
  std::span<const drivers::PhysRange> ranges() const { return driver_->ranges(); }
  // The RAM range holding `pa`, or nullptr.
  const drivers::PhysRange* RangeOf(uint64_t pa) const;

  // --- Virtual memory ---
  // The kernel's paging mode and page-table root, when known.
  std::optional<PagingMode> paging_mode() const { return mode_; }
  std::optional<uint64_t> kernel_dtb() const { return kernel_dtb_; }
  // Where the kernel facts came from, for `info` ("vCPU 0 registers").
  const std::string& kernel_dtb_source() const { return kernel_dtb_source_; }
  // Sets the kernel's paging mode and page-table root found by OS discovery (when the source
  // has no registers, or they disagree). REQUIRES: no concurrent use of this Guest yet.
  void SetKernelPageTables(PagingMode mode, uint64_t dtb, std::string source);

  // Translates through the tables at `dtb` (vmi_translate_uv2p once a process gives its dtb);
  // cached. kFault when unmapped; kUnsupported when the paging mode is unknown.
  Result<Mapping> Translate(uint64_t dtb, uint64_t va);
  // vmi_translate_kv2p.
  Result<uint64_t> TranslateKernel(uint64_t va);

  // vmi_read_va: exactly out.size() bytes or an error (kFault at the first unreadable VA).
  Status ReadVirtual(uint64_t dtb, uint64_t va, std::span<std::byte> out);
  Status WriteVirtual(uint64_t dtb, uint64_t va, std::span<const std::byte> in);
  Status ReadKernel(uint64_t va, std::span<std::byte> out);
  // Zero-filling read of a virtual range.
  Result<std::vector<Hole>> ZReadVirtual(uint64_t dtb, uint64_t va, std::span<std::byte> out);

  // Splits the file-offset range [offset, offset + length) of the address space at `dtb` into
  // runs (see VirtualToOffset for offsets). At most max_runs runs; the last covers the rest
  // only up to where it was resolved, so the sum of lengths can be < length.
  Result<std::vector<VirtualRun>> MapVirtualRange(uint64_t dtb, uint64_t offset, uint64_t length,
                                                  size_t max_runs);
  // SEEK_DATA / SEEK_HOLE over the address space at `dtb`, by file offset. NextData returns
  // nullopt when there is no data at or after `offset`; NextHole never fails to answer
  // (AddressSpaceSize is a hole).
  Result<std::optional<uint64_t>> NextDataOffset(uint64_t dtb, uint64_t offset);
  Result<uint64_t> NextHoleOffset(uint64_t dtb, uint64_t offset);

  // --- vCPUs, control, caches ---
  unsigned vcpu_count() const { return driver_->vcpu_count(); }
  Result<drivers::RegisterSet> Registers(unsigned vcpu);
  // vmi_get_vcpureg.
  Result<uint64_t> GetVcpuRegister(drivers::Register reg, unsigned vcpu);
  Status Pause();
  Status Resume();
  // vmi_v2pcache_flush.
  void FlushTranslationCache() { tlb_.Flush(); }
  // True while translations may be cached: a snapshot, or a live VM we paused. A running VM
  // can change its page tables at any moment, so then every translation walks them afresh.
  bool caching() const { return !driver_->live() || paused_.load(std::memory_order_relaxed); }

 private:
  class DriverMemory;  // PhysicalMemory over the driver
  Guest(std::unique_ptr<drivers::Driver> driver, const GuestOptions& options);
  void FindKernelPageTables();
  Result<PagingMode> RequireMode() const;
  // The RAM bytes `va` maps to: the physical address and how many bytes from there are both
  // in va's page and in one RAM range. kFault if va is unmapped or maps outside RAM.
  struct RamRun {
    uint64_t pa;
    uint64_t length;
  };
  Result<RamRun> TranslateToRam(uint64_t dtb, uint64_t va);

  std::unique_ptr<drivers::Driver> driver_;
  // The largest RAM range that the driver maps whole, at guest-physical direct_start_.
  std::span<const std::byte> direct_;
  uint64_t direct_start_ = 0;
  std::unique_ptr<PhysicalMemory> memory_;
  TranslationCache tlb_;
  std::atomic<bool> paused_{false};  // by our own Pause(); a live VM may also be paused by others
  std::optional<PagingMode> mode_;
  std::optional<uint64_t> kernel_dtb_;
  std::string kernel_dtb_source_;
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_GUEST_H_
