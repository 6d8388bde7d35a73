#include "vmi/linux/vmcoreinfo_scan.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string_view>
#include <vector>

#include "base/hex.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/vmcoreinfo.h"

namespace vmemfs::vmi::linux_os {
namespace {

// The note name with its NUL: 11 bytes, as n_namesz counts it.
constexpr std::string_view kName("VMCOREINFO\0", 11);
constexpr uint64_t kHeaderSize = 12;
constexpr uint64_t kNameFieldSize = 12;  // 11 padded to 4
constexpr size_t kChunk = 1 << 20;
constexpr uint64_t kPage = 4096;
constexpr size_t kMaxHeaderCandidates = 64;
// x86_64 links the kernel at __START_KERNEL = 0xffffffff81000000 (CONFIG_PHYSICAL_START
// 16 MiB, the default on every distribution kernel); KASLR slides it by KERNELOFFSET.
constexpr uint64_t kDefaultStartKernel = 0xffffffff81000000ull;

using HitFn = std::function<void(uint64_t pa)>;

void FindIn(std::span<const std::byte> bytes, uint64_t base, uint64_t min_start, const HitFn& hit) {
  const char* begin = reinterpret_cast<const char*>(bytes.data());
  const char* p = begin;
  const char* end = begin + bytes.size();
  while (static_cast<size_t>(end - p) >= kName.size()) {
    const void* found = memmem(p, end - p, kName.data(), kName.size());
    if (found == nullptr) return;
    const char* f = static_cast<const char*>(found);
    uint64_t pa = base + (f - begin);
    if (pa >= min_start) hit(pa);
    p = f + 1;
  }
}

// Reads [pa, pa + buf.size()) into buf; false on a hole.
Result<bool> ReadChunk(Guest& guest, uint64_t pa, std::span<std::byte> buf) {
  Status s = guest.ReadPhys(pa, buf);
  if (s.ok()) return true;
  if (s.code() == ErrorCode::kFault) return false;
  return s;
}

// Calls `hit` with the physical address of every kName in the range, reading it a chunk at a
// time; names that straddle the end of one chunk are found by re-reading the seam around it.
Status ScanRange(Guest& guest, const drivers::PhysRange& range, const HitFn& hit) {
  std::vector<std::byte> buf;
  for (uint64_t pa = range.start; pa < range.end;) {
    buf.resize(std::min<uint64_t>(kChunk, range.end - pa));
    VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadChunk(guest, pa, buf));
    uint64_t next = pa + buf.size();
    if (ok) FindIn(buf, pa, pa, hit);
    if (next < range.end) {
      uint64_t seam_start = std::max(range.start, next - (kName.size() - 1));
      std::vector<std::byte> seam(std::min<uint64_t>(next + kName.size() - 1, range.end) -
                                  seam_start);
      VMEMFS_ASSIGN_OR_RETURN(bool seam_ok, ReadChunk(guest, seam_start, seam));
      // Only names that start before `next`: the others are found in the next chunk.
      if (seam_ok) {
        FindIn(seam, seam_start, seam_start, [&](uint64_t at) {
          if (at < next && at + kName.size() > next) hit(at);
        });
      }
    }
    pa = next;
  }
  return Status();
}

// Calls `hit` for every page in the range whose bytes 12..23 are the note name: the kernel
// allocates its note with alloc_pages_exact, so the live note starts a page. One small look
// per page instead of a search through every byte.
Status ScanPageStarts(Guest& guest, const drivers::PhysRange& range, const HitFn& hit) {
  constexpr uint64_t kNeed = kHeaderSize + kName.size();
  std::array<std::byte, kNeed> buf;
  for (uint64_t pa = (range.start + kPage - 1) / kPage * kPage;
       pa < range.end && range.end - pa >= kNeed; pa += kPage) {
    VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadChunk(guest, pa, buf));
    if (!ok) continue;
    if (std::memcmp(buf.data() + kHeaderSize, kName.data(), kName.size()) == 0) {
      hit(pa + kHeaderSize);
    }
  }
  return Status();
}

// The note whose name is at `name_pa`, if its header and text are valid.
std::optional<VmcoreInfo> ReadNote(Guest& guest, uint64_t name_pa) {
  if (name_pa < kHeaderSize || (name_pa - kHeaderSize) % 4 != 0) return std::nullopt;
  uint32_t header[3];
  auto hb = std::as_writable_bytes(std::span(header));
  if (!guest.ReadPhys(name_pa - kHeaderSize, hb).ok()) return std::nullopt;
  if (header[0] != kName.size() || header[2] != 0 || header[1] == 0 ||
      header[1] > VmcoreInfo::kMaxTextBytes) {
    return std::nullopt;
  }
  std::string text(header[1], '\0');
  if (!guest.ReadPhys(name_pa + kNameFieldSize, std::as_writable_bytes(std::span(text))).ok()) {
    return std::nullopt;
  }
  auto info = VmcoreInfo::Parse(text);
  if (!info) return std::nullopt;
  return std::move(*info);
}

int Score(Guest& guest, const VmcoreInfo& info) {
  int score = 0;
  if (FindKernelLayout(guest, info).has_value()) score += 2;
  auto stext = info.Symbol("_stext");
  if (stext && *stext - info.kernel_offset().value_or(0) == kDefaultStartKernel) score += 1;
  return score;
}

// The best valid note among the name hits (see the header for "best"); nullopt if none.
std::optional<VmcoreInfoLocation> Choose(Guest& guest, const std::vector<uint64_t>& hits) {
  std::optional<VmcoreInfoLocation> best;
  int best_score = -1;
  std::vector<std::string> distinct;
  for (uint64_t name_pa : hits) {
    auto info = ReadNote(guest, name_pa);
    if (!info) continue;
    if (std::find(distinct.begin(), distinct.end(), info->text()) != distinct.end()) continue;
    distinct.push_back(info->text());
    int score = Score(guest, *info);
    if (score > best_score) {
      best_score = score;
      best = VmcoreInfoLocation{info->text(), name_pa - kHeaderSize,
                                "scan of all RAM", 0};
    }
  }
  if (best) best->candidates = distinct.size();
  return best;
}

using ScanFn = Status (*)(Guest&, const drivers::PhysRange&, const HitFn&);

}  // namespace

std::optional<VmcoreInfo> ReadVmcoreInfoNote(Guest& guest, uint64_t note_pa) {
  if (note_pa > UINT64_MAX - kHeaderSize) return std::nullopt;
  return ReadNote(guest, note_pa + kHeaderSize);
}

Result<VmcoreInfoLocation> LocateVmcoreInfo(Guest& guest) {
  // Page starts first (fast, where the kernel puts it), every byte only if that finds nothing.
  size_t seen = 0;
  for (ScanFn scan : {&ScanPageStarts, &ScanRange}) {
    std::vector<uint64_t> hits;
    seen = 0;
    for (const drivers::PhysRange& range : guest.ranges()) {
      VMEMFS_TRY(scan(guest, range, [&](uint64_t pa) {
        if (++seen <= kMaxHeaderCandidates) hits.push_back(pa);
      }));
    }
    if (auto best = Choose(guest, hits)) return std::move(*best);
  }
  return NotFoundError("no VMCOREINFO note in guest RAM (" + std::to_string(seen) +
                       " name matches)");
}


}  // namespace vmemfs::vmi::linux_os
