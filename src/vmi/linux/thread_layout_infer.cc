#include "vmi/linux/thread_layout_infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include "base/hex.h"
#include "vmi/linux/list_walk.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr int64_t kMaxHead = 512;   // signal_struct.thread_head within its first bytes
constexpr size_t kMaxGroup = 4096;  // threads per group walked while inferring
constexpr uint64_t kNrThreads = 8;  // sigcnt, live, nr_threads
constexpr uint32_t kMaxNrThreads = 1 << 22;
// Ring nodes visited over all candidates: a hostile guest could otherwise lay long fake rings
// behind every candidate offset.
constexpr size_t kMaxSteps = 4 << 20;

bool In(uint64_t v, StaticRange r) { return v >= r.start && v < r.end; }

// signal: init_task's in the image, every other one a distinct direct-map pointer.
bool SignalCandidate(const TaskSample& s, int64_t off, StaticRange image, uint64_t page_offset) {
  auto init = s.U32(0, off);
  if (!init || !In(*init, image) || *init % 4 != 0) return false;
  std::set<uint32_t> seen{*init};
  for (size_t i = 1; i < s.task.size(); ++i) {
    auto v = s.U32(i, off);
    if (!v || *v < page_offset || *v % 4 != 0 || !seen.insert(*v).second) return false;
  }
  return true;
}

// The thread ring of task i: consistent, through task_structs of its tgid, itself among them.
// Returns its length, nullopt when it is not such a ring.
std::optional<uint32_t> GroupSize(KernelMemory& mem, const TaskSample& s, const TaskLayout& l,
                                  size_t i, uint64_t signal, uint64_t head, uint64_t node,
                                  size_t& steps) {
  auto tgid = s.U32(i, static_cast<int64_t>(l.tgid.offset));
  if (!tgid) return std::nullopt;
  bool self = false;
  uint32_t n = 0;
  if (steps >= kMaxSteps) return std::nullopt;
  WalkEnd end = WalkList(
      mem, signal + head, std::min(kMaxGroup, kMaxSteps - steps), [&](uint64_t at) -> Status {
        ++steps;
        uint64_t task = at - node;
        self |= task == s.task[i];
        VMEMFS_ASSIGN_OR_RETURN(uint64_t t, mem.Unsigned(task + l.tgid.offset, 4));
        if (t != *tgid) return BadDataError("a thread of another group");
        ++n;
        return Status();
      });
  if (!end.status.ok() || !self) return std::nullopt;
  return n;
}

// Every sampled task's ring fits and nr_threads equals its length; all but 1% for a guest
// that runs while it is read.
bool RingsFit(KernelMemory& mem, const TaskSample& s, const TaskLayout& l, int64_t sig,
              uint64_t head, uint64_t node, size_t& steps) {
  const size_t max_bad = s.task.size() / 100;
  size_t bad = 0;
  for (size_t i = 0; i < s.task.size() && bad <= max_bad; ++i) {
    uint64_t signal = *s.U32(i, sig);
    auto n = GroupSize(mem, s, l, i, signal, head, node, steps);
    auto nr = n ? mem.Unsigned(signal + kNrThreads, 4) : Result<uint64_t>(FaultError(signal));
    bad += !nr || *nr != *n || *nr >= kMaxNrThreads;
  }
  return bad <= max_bad;
}

}  // namespace

Result<InferredThreads> InferThreadLayout32(KernelMemory& mem, const TaskSample& s,
                                            const TaskLayout& l, const std::set<int64_t>& taken,
                                            StaticRange image, uint64_t page_offset) {
  if (s.task.size() < 2) return NotFoundError("fewer than 2 sampled tasks");
  const uint64_t init = s.task[0];
  size_t steps = 0;
  for (int64_t sig = s.first(); sig + 4 <= s.end(); sig += 4) {
    if (taken.count(sig) || !SignalCandidate(s, sig, image, page_offset)) continue;
    const uint64_t init_signals = *s.U32(0, sig);
    uint32_t words[kMaxHead / 4];
    if (!mem.Read(init_signals, std::as_writable_bytes(std::span(words))).ok()) continue;
    for (int64_t head = 0; head < kMaxHead; head += 4) {
      // init_signals' ring holds init_task alone: its first node is init_task.thread_node.
      const uint64_t next = words[head / 4];
      if (next < init || next % 4 != 0) continue;
      const uint64_t node = next - init;
      if (node + 8 > static_cast<uint64_t>(s.end()) || taken.count(static_cast<int64_t>(node))) {
        continue;
      }
      if (!RingsFit(mem, s, l, sig, head, node, steps)) continue;
      InferredThreads out;
      out.signal = static_cast<uint64_t>(sig);
      out.thread_node = node;
      out.signal_thread_head = static_cast<uint64_t>(head);
      out.signal_nr_threads = {kNrThreads, 4};
      out.how = {
          "thread-offsets",
          fmt::format("signal {} thread_node {} signal.thread_head {} "
                      "signal.nr_threads {}",
                      Hex(out.signal), Hex(node), Hex(out.signal_thread_head), Hex(kNrThreads)),
          fmt::format("inferred on {} tasks: signal distinct per process (init_signals "
                      "in the image); its thread_head ring through thread_node holds "
                      "the tasks of the group's tgid, the task among them; nr_threads "
                      "(signal's third int) = the ring's length",
                      s.task.size())};
      return out;
    }
  }
  return NotFoundError(steps >= kMaxSteps
                           ? "thread rings too long: gave up after visiting " +
                                 std::to_string(kMaxSteps) + " nodes"
                           : "no signal/thread_head/thread_node offsets fit the sampled tasks");
}

}  // namespace vmemfs::vmi::linux_os
