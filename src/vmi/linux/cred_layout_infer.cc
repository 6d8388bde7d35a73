#include "vmi/linux/cred_layout_infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "base/hex.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kCredBytes = 64;      // usage, the debug words and the ids fit in these
constexpr uint32_t kMaxUsage = 1 << 24;  // a count, never an address
constexpr uint32_t kInvalidId = 0xffffffff;
constexpr uint32_t kCredMagic = 0x43736564;  // CONFIG_DEBUG_CREDENTIALS' cred.magic

bool In(uint64_t v, StaticRange r) { return v >= r.start && v < r.end; }

struct Cred {
  uint32_t w[kCredBytes / 4];
  bool root_only;  // init_cred or a kernel thread's: all ids 0
};

// real_cred/cred at `off`: equal in init_task and pointing into the image (not into
// init_task: an empty list_head points at itself), direct-map pointers elsewhere, equal in at
// least 90% of the tasks.
bool PairCandidate(const TaskSample& s, int64_t off, StaticRange image, uint64_t page_offset) {
  auto real = s.U32(0, off), eff = s.U32(0, off + 4);
  if (!real || !eff || *real != *eff || !In(*real, image)) return false;
  if (*real >= s.task[0] && *real < s.task[0] + s.end()) return false;
  size_t equal = 0;
  for (size_t i = 1; i < s.task.size(); ++i) {
    real = s.U32(i, off), eff = s.U32(i, off + 4);
    for (auto v : {real, eff}) {
      if (!v || *v < page_offset || *v % 4 != 0) return false;
    }
    equal += *real == *eff;
  }
  return equal * 10 >= (s.task.size() - 1) * 9;
}

// The first bytes of each task's real_cred; nullopt when one is unreadable or does not start
// with a usage count (most wrong candidates stop at the first task).
std::optional<std::vector<Cred>> ReadCreds(KernelMemory& mem, const TaskSample& s,
                                           const TaskLayout& l, int64_t off) {
  std::vector<Cred> creds;
  for (size_t i = 0; i < s.task.size(); ++i) {
    Cred c{};
    auto mm = s.U32(i, static_cast<int64_t>(l.mm));
    c.root_only = i == 0 || (mm && *mm == 0);
    if (!mem.Read(*s.U32(i, off), std::as_writable_bytes(std::span(c.w))).ok() || c.w[0] < 1 ||
        c.w[0] >= kMaxUsage) {
      return std::nullopt;
    }
    creds.push_back(c);
  }
  return creds;
}

// The offset of uid: right after the usage count (4), or after the debug words (16) when
// every cred has CRED_MAGIC at 12. Then eight ids, none -1, all 0 where only root runs; no
// other offset is tried (a shifted window of zeros would fit too).
std::optional<uint64_t> FindIds(const std::vector<Cred>& creds) {
  bool debug =
      std::all_of(creds.begin(), creds.end(), [](const Cred& c) { return c.w[3] == kCredMagic; });
  const uint64_t at = debug ? 16 : 4;
  for (const Cred& c : creds) {
    for (uint64_t k = 0; k < 8; ++k) {
      uint32_t id = c.w[at / 4 + k];
      if (id == kInvalidId || (c.root_only && id != 0)) return std::nullopt;
    }
  }
  return at;
}

}  // namespace

Result<InferredCreds> InferCredLayout32(KernelMemory& mem, const TaskSample& s, const TaskLayout& l,
                                        const std::set<int64_t>& taken, StaticRange image,
                                        uint64_t page_offset) {
  if (s.task.size() < 2) return NotFoundError("fewer than 2 sampled tasks");
  std::vector<InferredCreds> found;
  for (int64_t off = s.first(); off + 8 <= s.end() && found.size() < 2; off += 4) {
    if (taken.count(off) || taken.count(off + 4)) continue;
    if (!PairCandidate(s, off, image, page_offset)) continue;
    auto creds = ReadCreds(mem, s, l, off);
    if (!creds) continue;
    auto ids = FindIds(*creds);
    if (!ids) continue;
    InferredCreds c;
    c.real_cred = static_cast<uint64_t>(off);
    // The kernel's order: uid gid suid sgid euid egid fsuid fsgid, as CredId.
    for (uint64_t k = 0; k < 8; ++k) c.ids[k] = *ids + 4 * k;
    found.push_back(c);
  }
  if (found.empty()) return NotFoundError("no real_cred/cred pair with ids fits the sampled tasks");
  if (found.size() > 1) {
    return NotFoundError(fmt::format("real_cred ambiguous: {} and {} both fit",
                                     Hex(found[0].real_cred), Hex(found[1].real_cred)));
  }
  InferredCreds& c = found[0];
  c.how = {"cred-offsets",
           fmt::format("real_cred {} cred {} cred.uid {}", Hex(c.real_cred), Hex(c.real_cred + 4),
                       Hex(c.ids[kUid])),
           fmt::format("inferred on {} tasks: adjacent real_cred = cred (init_cred in the "
                       "image, slab pointers elsewhere); ids after the usage count (and the debug "
                       "words where CRED_MAGIC is), none -1, "
                       "all 0 in init_cred and kernel threads; the only pair that fits",
                       s.task.size())};
  return c;
}

}  // namespace vmemfs::vmi::linux_os
