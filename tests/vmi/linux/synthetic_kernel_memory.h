// A tiny synthetic guest for Linux-walker unit tests: RAM in a byte vector, mapped by 4-level
// page tables (one 1 GiB page) at the x86_64 direct-map base, so KernelMemory reads work on
// hand-built kernel structures. Addresses outside the RAM fault like unmapped guest memory.
#ifndef VMEMFS_TESTS_VMI_LINUX_SYNTHETIC_KERNEL_MEMORY_H_
#define VMEMFS_TESTS_VMI_LINUX_SYNTHETIC_KERNEL_MEMORY_H_

#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "drivers/driver.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_memory.h"

namespace vmemfs::testing {

class SyntheticKernelMemory {
 public:
  static constexpr uint64_t kBase = 0xffff888000000000ull;  // page_offset_base without KASLR

  explicit SyntheticKernelMemory(size_t ram_bytes = 4u << 20) {
    auto driver = std::make_unique<MemoryDriver>(ram_bytes);
    ram_ = driver.get();
    Put64Phys(0x1000 + 8 * ((kBase >> 39) & 511), 0x2000 | 0x3);  // PML4 -> PDPT, P|RW
    Put64Phys(0x2000, 0x0 | 0x83);                                // 1 GiB page at 0, PS
    guest_ = std::move(*vmi::Guest::Open(std::move(driver)));
    mem_ = std::make_unique<vmi::linux_os::KernelMemory>(
        *guest_, vmi::AddressSpace{vmi::PagingMode::kIa32e4, 0x1000});
  }

  vmi::linux_os::KernelMemory& mem() { return *mem_; }
  uint64_t ram_end() const { return kBase + ram_->end_address(); }

  // A zeroed block of kernel memory (bump allocation from 64 KiB up).
  uint64_t Alloc(size_t size, size_t align = 8) {
    next_ = (next_ + align - 1) / align * align;
    uint64_t pa = next_;
    next_ += size;
    if (next_ > ram_->end_address()) std::abort();
    return kBase + pa;
  }
  void Put64(uint64_t va, uint64_t v) { Put(va, &v, 8); }
  void Put32(uint64_t va, uint32_t v) { Put(va, &v, 4); }
  void Put8(uint64_t va, uint8_t v) { Put(va, &v, 1); }
  void PutBytes(uint64_t va, std::string_view s) { Put(va, s.data(), s.size()); }
  // A NUL-terminated copy of s; returns its address.
  uint64_t String(std::string_view s) {
    uint64_t va = Alloc(s.size() + 1);
    PutBytes(va, s);
    return va;
  }

 private:
  void Put64Phys(uint64_t pa, uint64_t v) { ram_->Put64(pa, v); }
  void Put(uint64_t va, const void* p, size_t n) {
    if (va < kBase) std::abort();
    ram_->Put(va - kBase, p, n);  // aborts outside RAM
  }

  MemoryDriver* ram_;
  std::unique_ptr<vmi::Guest> guest_;
  std::unique_ptr<vmi::linux_os::KernelMemory> mem_;
  uint64_t next_ = 0x10000;
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_VMI_LINUX_SYNTHETIC_KERNEL_MEMORY_H_
