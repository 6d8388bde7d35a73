// libFuzzer target: FindKernelVmcoreInfo on hostile RAM never crashes, hangs or reads past its
// budget, and what it returns keeps its contract.
//
// Input: [flags:1][cr3:8][tile...]. Guest RAM is the tile repeated from physical 0, so a
// small input can hold page tables whose every table is the same page (cycles, shared tables,
// huge fan-out), and a pointer to a note in it. Flags: bits 0-1 the RAM layout (64 KiB, 1 MiB,
// 16 MiB, 16 MiB with a hole at 640 KiB-1 MiB), bits 2-3 the vCPU registers (none, a 4-level
// CR3, a 5-level CR3, both plus a PAE one), bit 4 the caller's check rejects every note.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "invariant.h"
#include "base/checked.h"
#include "vmi/linux/kernel_finder.h"

namespace vmemfs::vmi::linux_os {
namespace {

// The tile repeated over `ranges`; reads touching anything else fault. Counts bytes read.
class TiledRam : public PhysicalMemory {
 public:
  TiledRam(std::span<const uint8_t> tile, std::vector<drivers::PhysRange> ranges)
      : tile_(tile), ranges_(std::move(ranges)) {}

  Status Read(uint64_t pa, std::span<std::byte> out) override {
    bytes_read += out.size();
    if (!Covered(pa, out.size())) return FaultError(pa);
    if (tile_.empty()) {
      std::memset(out.data(), 0, out.size());
      return Status();
    }
    for (size_t done = 0; done < out.size();) {
      const size_t at = (pa + done) % tile_.size();
      const size_t n = std::min(out.size() - done, tile_.size() - at);
      std::memcpy(out.data() + done, tile_.data() + at, n);
      done += n;
    }
    return Status();
  }
  std::span<const drivers::PhysRange> ranges() const { return ranges_; }
  uint64_t bytes_read = 0;

 private:
  bool Covered(uint64_t pa, uint64_t size) const {
    for (const drivers::PhysRange& r : ranges_) {
      if (pa >= r.start && RangeWithin(pa - r.start, size, r.size())) return true;
    }
    return false;
  }

  std::span<const uint8_t> tile_;
  std::vector<drivers::PhysRange> ranges_;
};

std::vector<drivers::PhysRange> Layout(unsigned kind) {
  switch (kind & 3) {
    case 0:
      return {{0, 64 << 10}};
    case 1:
      return {{0, 1 << 20}};
    case 2:
      return {{0, 16 << 20}};
    default:
      return {{0, 0xa0000}, {1 << 20, 16 << 20}};
  }
}

std::vector<RegisterRoot> Registers(unsigned kind, uint64_t cr3) {
  switch (kind & 3) {
    case 0:
      return {};
    case 1:
      return {{PagingMode::kIa32e4, cr3, "vCPU 0 CR3"}};
    case 2:
      return {{PagingMode::kIa32e5, cr3, "vCPU 0 CR3"}};
    default:
      return {{PagingMode::kPae, cr3, "vCPU 0 CR3"},
              {PagingMode::kIa32e4, cr3, "vCPU 1 CR3"},
              {PagingMode::kIa32e5, cr3 ^ 0x1000, "vCPU 2 CR3"}};
  }
}

void FuzzOne(uint8_t flags, uint64_t cr3, std::span<const uint8_t> tile) {
  TiledRam ram(tile, Layout(flags));
  const std::vector<RegisterRoot> regs = Registers(flags >> 2, cr3);
  const bool reject = (flags & 0x10) != 0;
  KernelFinderLimits limits;  // small, so one input runs in milliseconds
  limits.max_bytes = 2 << 20;
  limits.max_bytes_per_root = 1 << 20;
  limits.max_image_mappings = 1 << 12;
  int verified = 0;
  auto verify = [&](const VmcoreInfo&) {
    ++verified;
    return !reject;
  };
  Result<KernelFinding> f = FindKernelVmcoreInfo({ram, ram.ranges(), regs, verify, limits});
  CHECK_INVARIANT(ram.bytes_read <= limits.max_bytes);
  if (!f) {
    CHECK_INVARIANT(f.error().code() == ErrorCode::kNotFound);
    return;
  }
  CHECK_INVARIANT(!reject && verified >= 1);
  CHECK_INVARIANT(f->cost.bytes_read == ram.bytes_read);
  CHECK_INVARIANT(f->mode == PagingMode::kIa32e4 || f->mode == PagingMode::kIa32e5);
  CHECK_INVARIANT(f->root % 4096 == 0 && f->note_pa % 4096 == 0);
  CHECK_INVARIANT(f->image_start < f->image_end && f->image_start >= 0xffffffff80000000ull &&
                  f->image_end <= 0xffffffffc0000000ull);
  CHECK_INVARIANT(f->pointer_va >= f->image_start && f->pointer_va < f->image_end);
  auto info = VmcoreInfo::Parse(f->text);
  CHECK_INVARIANT(info.has_value() && info->text() == f->text);
  auto stext = info->Symbol("_stext");
  CHECK_INVARIANT(stext && *stext >= f->image_start && *stext < f->image_end);
  CHECK_INVARIANT(!f->how.empty());
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 1 + 8;
  if (size < kHeader) return 0;
  uint64_t cr3;
  std::memcpy(&cr3, data + 1, 8);
  vmemfs::vmi::linux_os::FuzzOne(data[0], cr3, std::span(data + kHeader, size - kHeader));
  return 0;
}
