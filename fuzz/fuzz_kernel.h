// Shared by the Linux walker fuzz targets: the fuzz input as kernel memory behind real page
// tables, so walkers run through KernelMemory exactly as on a guest.
//
// Physical layout: a PML4 at 0x1000 and a PDPT at 0x2000 map kBase.. with one 1 GiB page at
// physical 0; the input follows at physical kImage (kernel VA kBase + kImage). Reads past the
// input's end fault like unmapped guest memory.
#ifndef VMEMFS_FUZZ_FUZZ_KERNEL_H_
#define VMEMFS_FUZZ_FUZZ_KERNEL_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "drivers/driver.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_memory.h"

namespace vmemfs::fuzz {

inline void Require(bool ok) {
  if (!ok) std::abort();
}

// A guest over `driver` (page tables and the input already in it) and its kernel memory.
class FuzzMemory {
 public:
  vmi::linux_os::KernelMemory& mem() { return *mem_; }

 protected:
  FuzzMemory(std::unique_ptr<testing::MemoryDriver> driver, vmi::AddressSpace kernel,
             uint64_t pointer_size)
      : guest_(std::move(*vmi::Guest::Open(std::move(driver)))),
        mem_(std::make_unique<vmi::linux_os::KernelMemory>(*guest_, kernel, pointer_size)) {}

 private:
  std::unique_ptr<vmi::Guest> guest_;
  std::unique_ptr<vmi::linux_os::KernelMemory> mem_;
};

class FuzzKernel : public FuzzMemory {
 public:
  static constexpr uint64_t kBase = 0xffff888000000000ull;
  static constexpr uint64_t kImage = 0x10000;

  explicit FuzzKernel(std::span<const uint8_t> image)
      : FuzzMemory(Driver(image), vmi::AddressSpace{vmi::PagingMode::kIa32e4, 0x1000}, 8) {}
  // The kernel VA of byte `offset` of the image.
  static uint64_t Va(uint64_t offset) { return kBase + kImage + offset; }

 private:
  static std::unique_ptr<testing::MemoryDriver> Driver(std::span<const uint8_t> image) {
    auto driver = std::make_unique<testing::MemoryDriver>(kImage + image.size());
    driver->Put64(0x1000 + 8 * ((kBase >> 39) & 511), 0x2000 | 0x3);  // PML4 -> PDPT
    driver->Put64(0x2000, 0x83);                                      // 1 GiB page at physical 0
    if (!image.empty()) driver->Put(kImage, image.data(), image.size());
    return driver;
  }
};

// The same for the 32-bit inference targets: 2-level 32-bit page tables (the page directory at
// physical 0) map lowmem at kPageOffset with 4 MiB pages; the input follows at physical kImage.
class FuzzKernel32 : public FuzzMemory {
 public:
  static constexpr uint64_t kPageOffset = 0xc0000000;
  static constexpr uint64_t kImage = 0x10000;

  explicit FuzzKernel32(std::span<const uint8_t> image)
      : FuzzMemory(Driver(image), vmi::AddressSpace{vmi::PagingMode::kLegacy32, 0}, 4) {}
  // The kernel VA of byte `offset` of the image.
  static uint64_t Va(uint64_t offset) { return kPageOffset + kImage + offset; }

 private:
  static std::unique_ptr<testing::MemoryDriver> Driver(std::span<const uint8_t> image) {
    const uint64_t size = kImage + image.size() + 1;
    auto driver = std::make_unique<testing::MemoryDriver>(size);
    for (uint32_t i = 0; i * (4ull << 20) < size; ++i) {
      driver->Put32(((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);  // PDE: 4 MiB page
    }
    if (!image.empty()) driver->Put(kImage, image.data(), image.size());
    return driver;
  }
};

}  // namespace vmemfs::fuzz

#endif  // VMEMFS_FUZZ_FUZZ_KERNEL_H_
