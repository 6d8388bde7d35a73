// Fuzzes the page-table walker with hostile "physical memory".
//
// Input: [mode:1][dtb:8][va x4: 8 each][image...]. The image is guest RAM at physical 0; reads
// past it fault. Checks that nothing crashes or hangs, and that Translate, NextMapping and
// TranslationCache agree with each other.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "invariant.h"
#include "base/checked.h"
#include "vmi/paging.h"
#include "vmi/translation_cache.h"

namespace vmemfs::vmi {
namespace {

class ImageMemory : public PhysicalMemory {
 public:
  explicit ImageMemory(std::span<const uint8_t> image) : image_(image) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override {
    if (!RangeWithin(pa, out.size(), image_.size())) return FaultError(pa);
    std::memcpy(out.data(), image_.data() + pa, out.size());
    return Status();
  }

 private:
  std::span<const uint8_t> image_;
};

bool Same(const Mapping& a, const Mapping& b) {
  return a.va == b.va && a.pa == b.pa && a.size == b.size && a.writable == b.writable &&
         a.user == b.user && a.executable == b.executable;
}

bool ValidSize(PagingMode mode, uint64_t size) {
  switch (mode) {
    case PagingMode::kLegacy32:
      return size == 4096 || size == (4ull << 20);
    case PagingMode::kPae:
      return size == 4096 || size == (2ull << 20);
    default:
      return size == 4096 || size == (2ull << 20) || size == (1ull << 30);
  }
}

// A mapping is well formed and covers `va`.
void CheckCovers(PagingMode mode, const Mapping& m, uint64_t va) {
  CHECK_INVARIANT(ValidSize(mode, m.size));
  CHECK_INVARIANT((m.va & (m.size - 1)) == 0 && (m.pa & (m.size - 1)) == 0);
  CHECK_INVARIANT(m.va <= va && va - m.va < m.size);
  CHECK_INVARIANT(OffsetToVirtual(mode, VirtualToOffset(mode, m.va)) == m.va);
}

uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void FuzzOne(PagingMode mode, uint64_t dtb, const uint64_t (&vas)[4], ImageMemory& mem) {
  const uint64_t space = AddressSpaceSize(mode);
  TranslationCache cache(64);
  for (int k = 0; k < 4; ++k) {
    const uint64_t raw = vas[k];
    const uint64_t va = OffsetToVirtual(mode, raw);  // canonical, so Translate may succeed
    const uint64_t offset = VirtualToOffset(mode, va);
    Result<Mapping> t = Translate(mem, mode, dtb, va);
    Result<std::optional<Mapping>> n = NextMapping(mem, mode, dtb, offset, offset + 1);
    if (t.has_value()) {
      CheckCovers(mode, *t, va);
      // The one-address scan finds exactly the translation.
      CHECK_INVARIANT(n.has_value() && n->has_value() && Same(**n, *t));
      cache.Insert(dtb, *t);
      std::optional<Mapping> c = cache.Lookup(dtb, va);
      CHECK_INVARIANT(!c || Same(*c, *t));
    } else {
      CHECK_INVARIANT(t.error().code() == ErrorCode::kFault && t.error().address() == va);
      CHECK_INVARIANT(n.has_value() && !n->has_value());
    }
    // A few steps of iteration from the first address: ordered, well formed, and each result
    // translates. (Only one: a call that hits the scan limit costs milliseconds.)
    if (k != 0) continue;
    uint64_t next = offset;
    for (int i = 0; i < 16 && next < space; ++i) {
      Result<std::optional<Mapping>> r = NextMapping(mem, mode, dtb, next, space);
      if (!r.has_value()) {
        CHECK_INVARIANT(r.error().code() ==
                        ErrorCode::kBadData);  // the scan limit; faults are skipped
        break;
      }
      if (!*r) break;
      const Mapping& m = **r;
      const uint64_t m_offset = VirtualToOffset(mode, m.va);
      CheckCovers(mode, m, m.va);
      CHECK_INVARIANT(m_offset + m.size > next);
      Result<Mapping> first = Translate(mem, mode, dtb, m.va);
      Result<Mapping> last = Translate(mem, mode, dtb, m.va + m.size - 1);
      CHECK_INVARIANT(first.has_value() && Same(*first, m));
      CHECK_INVARIANT(last.has_value() && Same(*last, m));
      next = m_offset + m.size;
    }
  }
}

}  // namespace
}  // namespace vmemfs::vmi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmemfs::vmi;
  constexpr size_t kHeader = 1 + 8 + 4 * 8;
  if (size < kHeader) return 0;
  const PagingMode mode = static_cast<PagingMode>(data[0] & 3);
  // Keep the root mostly inside the image so the fuzzer reaches the deeper levels.
  const uint64_t raw_dtb = Load64(data + 1);
  const size_t image_size = size - kHeader;
  const uint64_t dtb = DtbFromCr3(mode, (data[0] & 4) ? raw_dtb : raw_dtb % (image_size + 1));
  uint64_t vas[4];
  for (int i = 0; i < 4; ++i) vas[i] = Load64(data + 9 + 8 * i);
  ImageMemory mem(std::span(data + kHeader, image_size));
  FuzzOne(mode, dtb, vas, mem);
  return 0;
}
