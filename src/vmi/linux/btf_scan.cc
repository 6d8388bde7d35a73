#include "vmi/linux/btf_scan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kMaxScanBytes = 64ull << 20;
constexpr uint64_t kMaxBtfBytes = 64ull << 20;
constexpr int kMaxCandidates = 16;
constexpr size_t kChunk = 1 << 20;
constexpr size_t kHeader = 24;  // struct btf_header

uint32_t Load32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The whole blob's size if `p` starts a plausible header, else 0.
uint64_t BlobSize(const std::byte* p) {
  if (p[0] != std::byte{0x9f} || p[1] != std::byte{0xeb} || p[2] != std::byte{1} ||
      p[3] != std::byte{0}) {
    return 0;
  }
  const uint64_t hdr_len = Load32(p + 4), type_off = Load32(p + 8), type_len = Load32(p + 12);
  const uint64_t str_off = Load32(p + 16), str_len = Load32(p + 20);
  if (hdr_len < kHeader || hdr_len > 256 || type_len == 0 || str_len == 0) return 0;
  const uint64_t size = hdr_len + std::max(type_off + type_len, str_off + str_len);
  return size <= kMaxBtfBytes ? size : 0;
}

class Scan {
 public:
  explicit Scan(KernelMemory& memory) : memory_(memory) {}

  Result<ScannedBtf> Run(std::span<const ImageRun> image) {
    for (const ImageRun& run : image) {
      if (run.writable || run.executable) continue;
      VMEMFS_ASSIGN_OR_RETURN(std::optional<ScannedBtf> found, ScanRun(run));
      if (found) return std::move(*found);
      if (scanned_ >= kMaxScanBytes || candidates_ >= kMaxCandidates) break;
    }
    return NotFoundError(fmt::format(
        "no BTF header in {} bytes of the kernel's read-only data ({} candidates{})", scanned_,
        candidates_, last_reject_.empty() ? "" : "; last: " + last_reject_));
  }

 private:
  Result<std::optional<ScannedBtf>> ScanRun(const ImageRun& run) {
    std::vector<std::byte> chunk;
    // Chunks overlap by a header, so one that straddles two chunks is seen.
    for (uint64_t off = 0; off + kHeader <= run.size; off += kChunk) {
      if (scanned_ >= kMaxScanBytes || candidates_ >= kMaxCandidates) break;
      const uint64_t n = std::min<uint64_t>(kChunk + kHeader, run.size - off);
      chunk.resize(n);
      scanned_ += n;
      Status s = memory_.Read(run.va + off, chunk);
      if (s.code() == ErrorCode::kFault) continue;  // a page outside RAM
      VMEMFS_TRY(s);
      for (size_t i = 0; i + kHeader <= n && candidates_ < kMaxCandidates; i += 4) {
        const uint64_t size = BlobSize(chunk.data() + i);
        if (size == 0) continue;
        ++candidates_;
        if (auto found = TryBlob(run.va + off + i, size)) return found;
      }
    }
    return std::optional<ScannedBtf>();
  }

  std::optional<ScannedBtf> TryBlob(uint64_t va, uint64_t size) {
    std::vector<std::byte> blob(size);
    if (Status s = memory_.Read(va, blob); !s.ok()) {
      last_reject_ = fmt::format("{:#x}: {}", va, s.message());
      return std::nullopt;
    }
    auto types = KernelTypes::FromBtf(blob);
    if (!types) {
      last_reject_ = fmt::format("{:#x}: {}", va, types.error().message());
      return std::nullopt;
    }
    if (!(*types)->Size("task_struct")) {
      last_reject_ = fmt::format("{:#x}: no task_struct", va);
      return std::nullopt;
    }
    return ScannedBtf{va, size, std::move(*types)};
  }

  KernelMemory& memory_;
  uint64_t scanned_ = 0;
  int candidates_ = 0;
  std::string last_reject_;
};

}  // namespace

Result<ScannedBtf> FindBtfInImage(KernelMemory& memory, std::span<const ImageRun> image) {
  return Scan(memory).Run(image);
}

}  // namespace vmemfs::vmi::linux_os
