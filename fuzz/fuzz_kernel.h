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
#include "vmi/guest.h"
#include "vmi/linux/kernel_memory.h"

namespace vmemfs::fuzz {

inline void Require(bool ok) {
  if (!ok) std::abort();
}

class FuzzKernel {
 public:
  static constexpr uint64_t kBase = 0xffff888000000000ull;
  static constexpr uint64_t kImage = 0x10000;

  explicit FuzzKernel(std::span<const uint8_t> image) {
    auto driver = std::make_unique<Ram>(kImage + image.size());
    Put64(driver->ram, 0x1000 + 8 * ((kBase >> 39) & 511), 0x2000 | 0x3);  // PML4 -> PDPT
    Put64(driver->ram, 0x2000, 0x83);  // 1 GiB page at physical 0
    if (!image.empty()) std::memcpy(driver->ram.data() + kImage, image.data(), image.size());
    guest_ = std::move(*vmi::Guest::Create(std::move(driver)));
    guest_->SetKernelPageTables(vmi::PagingMode::kIa32e4, 0x1000, "fuzz");
    mem_ = std::make_unique<vmi::linux_os::KernelMemory>(*guest_);
  }
  vmi::linux_os::KernelMemory& mem() { return *mem_; }
  // The kernel VA of byte `offset` of the image.
  static uint64_t Va(uint64_t offset) { return kBase + kImage + offset; }

 private:
  struct Ram : drivers::Driver {
    explicit Ram(size_t n) : ram(n), range{{0, n}} {}
    std::string_view kind() const override { return "fuzz"; }
    std::span<const drivers::PhysRange> ranges() const override { return range; }
    Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
      if (pa > ram.size() || out.size() > ram.size() - pa) return FaultError(pa);
      std::memcpy(out.data(), ram.data() + pa, out.size());
      return Status();
    }
    std::vector<Fact> Describe() const override { return {}; }
    std::vector<std::byte> ram;
    std::vector<drivers::PhysRange> range;
  };
  static void Put64(std::vector<std::byte>& ram, uint64_t pa, uint64_t v) {
    std::memcpy(ram.data() + pa, &v, 8);
  }

  std::unique_ptr<vmi::Guest> guest_;
  std::unique_ptr<vmi::linux_os::KernelMemory> mem_;
};

}  // namespace vmemfs::fuzz

#endif  // VMEMFS_FUZZ_FUZZ_KERNEL_H_
