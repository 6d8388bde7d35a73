#include "vmi/linux/kallsyms_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kMaxNamesBytes32 = 64ull << 20;
constexpr std::string_view kTypeLetters = "aAbBCdDgGiInNprRsStTuUvVwW";

uint64_t Align8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }

// kallsyms_markers at `va`, if what is there looks like them: starting at 0, ascending,
// inside the names' size bound.
std::optional<std::vector<uint32_t>> ReadMarkers(const KernelReader& read, uint64_t va,
                                                 size_t count) {
  std::vector<uint32_t> markers(count);
  if (!read(va, std::as_writable_bytes(std::span(markers))).ok()) return std::nullopt;
  if (markers.empty() || markers[0] != 0) return std::nullopt;
  for (size_t i = 1; i < markers.size(); ++i) {
    if (markers[i] <= markers[i - 1] || markers[i] >= kMaxNamesBytes32) return std::nullopt;
  }
  return markers;
}

// Check 1: how many names the markers vouch for; sets verdict.markers/damage.
size_t StructurallyGood(const KernelReader& read, const KallsymsAddresses& at,
                        const DecodedNames& decoded, size_t decoded_names, NamesVerdict& verdict) {
  const size_t blocks = (decoded.count + kKallsymsMarkerStride - 1) / kKallsymsMarkerStride;
  const uint64_t after_names = Align8(at.names + decoded.end);
  // Each table starts 8-byte aligned; kallsyms_seqs_of_names (3 bytes a name, 6.1 stable and
  // 6.2+) may sit between the markers and the token table.
  const uint64_t before_tokens = (at.token_table - 4 * blocks) & ~uint64_t{7};
  const uint64_t before_seqs =
      ((((at.token_table - 3ull * decoded.count) & ~uint64_t{7}) - 4 * blocks) & ~uint64_t{7});
  std::optional<std::vector<uint32_t>> markers;
  uint64_t where = 0;
  for (uint64_t candidate : {after_names, before_seqs, before_tokens}) {
    // Where the names end says nothing when they did not decode to the end.
    if (candidate == after_names && !decoded.complete) continue;
    markers = ReadMarkers(read, candidate, blocks);
    if (markers) {
      where = candidate;
      break;
    }
  }
  if (!markers) return decoded_names;
  verdict.markers = true;
  const std::vector<uint64_t>& ours = decoded.block_offsets;
  size_t good_blocks = 0;
  // Block b is good when its end is right: the next marker, or for the last block the end of
  // the names right before the markers.
  for (size_t b = 0; b < blocks && b < ours.size(); ++b) {
    if (ours[b] != (*markers)[b]) break;
    const bool last = b + 1 == blocks;
    const bool end_ok = last ? decoded.complete && after_names == where
                             : b + 1 < ours.size() && ours[b + 1] == (*markers)[b + 1];
    if (!end_ok) {
      verdict.damage = fmt::format(
          "names {}..{} do not end where kallsyms_markers at {:#x} says", b * kKallsymsMarkerStride,
          std::min<size_t>((b + 1) * kKallsymsMarkerStride, decoded.count) - 1, where);
      break;
    }
    ++good_blocks;
  }
  return std::min(decoded_names, good_blocks * kKallsymsMarkerStride);
}

bool PlausibleName(const Symbol& s) {
  if (s.name.empty() || kTypeLetters.find(s.type) == std::string_view::npos) return false;
  return std::all_of(s.name.begin(), s.name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Check 2: "" if VMCOREINFO's symbols agree with symbols [0, keep), else why not.
std::string DisagreesWithVmcoreInfo(const KallsymsAddresses& at, std::span<const Symbol> kept) {
  if (kept.empty() || at.known.empty()) return "";
  uint64_t highest = 0;
  std::unordered_map<std::string_view, std::vector<uint64_t>> by_name;
  for (const Symbol& s : kept) {
    highest = std::max(highest, s.address);
    by_name[s.name].push_back(s.address);
  }
  size_t covered = 0, found = 0;
  for (const auto& [name, address] : at.known) {
    if (address > highest) continue;  // beyond the names kept
    ++covered;
    auto it = by_name.find(name);
    if (it == by_name.end()) continue;  // not every VMCOREINFO name is a symbol
    if (std::find(it->second.begin(), it->second.end(), address) == it->second.end()) {
      return fmt::format("{} is at {:#x}, VMCOREINFO says {:#x}", name, it->second.front(),
                         address);
    }
    ++found;
  }
  if (covered > 0 && found == 0) {
    return fmt::format("none of the {} symbols VMCOREINFO names is among the names", covered);
  }
  return "";
}

}  // namespace

NamesVerdict CheckKallsymsNames(const KernelReader& read, const KallsymsAddresses& at,
                                const DecodedNames& decoded, std::span<const Symbol> symbols) {
  NamesVerdict verdict;
  verdict.keep = StructurallyGood(read, at, decoded, symbols.size(), verdict);
  std::span<const Symbol> kept = symbols.first(verdict.keep);
  const size_t odd = static_cast<size_t>(
      std::count_if(kept.begin(), kept.end(), [](const Symbol& s) { return !PlausibleName(s); }));
  std::string why = DisagreesWithVmcoreInfo(at, kept);
  if (why.empty() && odd * 1000 > kept.size()) {
    why = fmt::format("{} of {} names are not printable identifiers with an nm type", odd,
                      kept.size());
  }
  if (!why.empty()) {
    verdict.keep = 0;
    verdict.damage = verdict.damage.empty() ? why : verdict.damage + "; " + why;
  }
  return verdict;
}

}  // namespace vmemfs::vmi::linux_os
