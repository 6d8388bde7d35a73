#include "vmi/linux/task_layout_infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>

#include "base/hex.h"
#include "vmi/linux/cred_layout_infer.h"
#include "vmi/linux/kthread_name_infer.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/list_walk.h"
#include "vmi/linux/thread_layout_infer.h"
#include "vmi/linux/tasks.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr std::string_view kSwapper("swapper/0\0\0\0\0\0\0\0", 16);  // comm, NUL-padded
constexpr uint64_t kCommSize = 16;
// Every offset is looked for within this distance of a task's tasks node (task_struct of a
// 32-bit 6.1 kernel is ~2.5 KiB without its FPU state, which comes last).
constexpr int64_t kSpan = 3072;
constexpr uint64_t kChunk = 1 << 20;
constexpr size_t kMaxInitCandidates = 16;
constexpr size_t kMaxRing = 1 << 20;     // processes on the ring
// Ring nodes visited over all candidates and distances: a hostile guest could otherwise lay
// a long fake ring at every distance of every candidate.
constexpr size_t kMaxRingSteps = 4 << 20;
constexpr size_t kMaxSample = 1024;      // tasks whose windows are read for the inference
constexpr uint32_t kPidMax = 4 << 20;    // PID_MAX_LIMIT
constexpr int64_t kMaxMmScan = 1024;     // bytes of mm_struct searched for pgd and the args
constexpr uint64_t kMaxArgsEnv = 8 << 20;

bool Printable(std::string_view comm) {
  size_t n = comm.find('\0');
  if (n == 0 || n == std::string_view::npos) return false;
  return std::all_of(comm.begin(), comm.begin() + n,
                     [](char c) { return c >= 0x20 && c < 0x7f; });
}

Result<std::string> Comm(KernelMemory& mem, uint64_t va) {
  std::string comm(kCommSize, '\0');
  VMEMFS_TRY(mem.Read(va, std::as_writable_bytes(std::span(comm))));
  return comm;
}

// Addresses of "swapper/0" comms starting in [start, start + bytes), bytes <= kChunk (read
// with a comm's length more, so a comm across the end is seen here).
Result<std::vector<uint64_t>> FindSwapperComms(KernelMemory& mem, uint64_t start, uint64_t bytes) {
  std::vector<uint64_t> found;
  std::vector<std::byte> buf(bytes + kSwapper.size() - 1);
  VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(start, buf));
  if (!ok) {  // the tail may be past the image's last page: try without it
    buf.resize(bytes);
    VMEMFS_ASSIGN_OR_RETURN(ok, mem.ReadIfMapped(start, buf));
    if (!ok) return found;
  }
  const char* base = reinterpret_cast<const char*>(buf.data());
  for (size_t at = 0; at + kSwapper.size() <= buf.size();) {
    const void* hit = memmem(base + at, buf.size() - at, kSwapper.data(), kSwapper.size());
    if (hit == nullptr) break;
    size_t pos = static_cast<const char*>(hit) - base;
    if (pos < bytes) found.push_back(start + pos);
    at = pos + 1;
  }
  return found;
}

struct Ring {
  uint64_t head = 0;            // init_task.tasks
  uint64_t comm_distance = 0;   // comm - tasks
  std::vector<uint64_t> nodes;  // every process's tasks node, in list order
};

// The ring through init_task.tasks when init_task.comm is at `comm`: the distance whose ring
// is longest.
// `steps` counts the nodes visited (all calls share kMaxRingSteps).
Result<std::optional<Ring>> FindRing(KernelMemory& mem, uint64_t comm, uint64_t page_offset,
                                     size_t& steps) {
  std::optional<Ring> best;
  for (uint64_t d = 8; d <= kSpan && steps < kMaxRingSteps; d += 4) {
    const uint64_t head = comm - d;
    auto next = mem.Pointer(head);
    if (!next || *next < page_offset || *next % 4 != 0 || *next == head) continue;
    auto back = mem.Pointer(*next + 4);
    if (!back || *back != head) continue;
    auto first = Comm(mem, *next + d);
    if (!first || !Printable(*first)) continue;
    Ring ring{head, d, {}};
    WalkEnd end = WalkList(mem, head, std::min(kMaxRing, kMaxRingSteps - steps),
                           [&](uint64_t node) -> Status {
      ++steps;
      VMEMFS_ASSIGN_OR_RETURN(std::string c, Comm(mem, node + d));
      if (!Printable(c)) return BadDataError("no comm");
      ring.nodes.push_back(node);
      return Status();
    });
    if (!end.status.ok()) continue;
    if (!best || ring.nodes.size() > best->nodes.size()) best = std::move(ring);
  }
  return best;
}

// Bytes [node - kSpan, node + kSpan) of each sampled task, the head's first.
struct Windows {
  std::vector<std::vector<std::byte>> w;  // w[0]: init_task; w[i]: nodes[i - 1]
  std::vector<uint64_t> node;             // the tasks node of each window

  uint32_t At(size_t i, int64_t rel) const {
    uint32_t v;
    std::memcpy(&v, w[i].data() + kSpan + rel, 4);
    return v;
  }
};

Result<Windows> ReadWindows(KernelMemory& mem, const Ring& ring) {
  Windows out;
  std::vector<uint64_t> nodes{ring.head};
  for (size_t i = 0; i < ring.nodes.size() && nodes.size() < kMaxSample; ++i) {
    nodes.push_back(ring.nodes[i]);
  }
  for (uint64_t node : nodes) {
    std::vector<std::byte> w(2 * kSpan);
    VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(node - kSpan, w));
    if (!ok) {
      if (node == ring.head || node == ring.nodes[0]) return NotFoundError("init_task or pid 1 unreadable");
      continue;  // a sample less
    }
    out.w.push_back(std::move(w));
    out.node.push_back(node);
  }
  if (out.w.size() < 3) return NotFoundError("fewer than 2 readable processes");
  return out;
}

// pid (tgid right after it): 0 in init_task, 1 in the first process, distinct and equal to
// tgid in every process.
std::optional<int64_t> FindPid(const Windows& t) {
  for (int64_t rel = -kSpan; rel + 8 <= kSpan; rel += 4) {
    if (t.At(0, rel) != 0 || t.At(0, rel + 4) != 0 || t.At(1, rel) != 1) continue;
    std::set<uint32_t> seen;
    bool ok = true;
    for (size_t i = 1; i < t.w.size() && ok; ++i) {
      uint32_t pid = t.At(i, rel);
      ok = pid > 0 && pid <= kPidMax && t.At(i, rel + 4) == pid && seen.insert(pid).second;
    }
    if (ok) return rel;
  }
  return std::nullopt;
}

// real_parent: points at the task_struct whose ring node lies the (unknown, common) tasks
// offset after it; for pid 1 that is init_task. Returns {rel, tasks offset}.
std::optional<std::pair<int64_t, uint64_t>> FindParent(const Windows& t) {
  std::set<uint64_t> nodes(t.node.begin(), t.node.end());
  for (int64_t rel = -kSpan; rel + 4 <= kSpan; rel += 4) {
    uint64_t init_start = t.At(1, rel);
    if (init_start >= t.node[0] || t.node[0] - init_start > static_cast<uint64_t>(kSpan)) continue;
    const uint64_t tasks = t.node[0] - init_start;
    if (rel + static_cast<int64_t>(tasks) < 0) continue;  // before the task_struct
    size_t match = 0;
    for (size_t i = 1; i < t.w.size(); ++i) match += nodes.count(t.At(i, rel) + tasks);
    // Parents outside the sample (a forking thread, a process past kMaxSample) are rare.
    if (match * 100 >= (t.w.size() - 1) * 99) return std::pair{rel, tasks};
  }
  return std::nullopt;
}

// mm_struct.pgd: the direct-map pointer whose page tables map _stext as the kernel's do.
std::optional<int64_t> FindPgd(KernelMemory& mem, const InferInput& in, uint64_t mm) {
  for (int64_t g = 0; g < kMaxMmScan; g += 4) {
    auto v = mem.Pointer(mm + g);
    if (!v || *v < in.page_offset || *v % 32 != 0) continue;
    auto pa = TranslateWith(mem.guest(), mem.kernel().mode, *v - in.page_offset, in.stext);
    if (pa && *pa == in.stext_pa) return g;
  }
  return std::nullopt;
}

// mm: NULL in init_task, NULL or a direct-map pointer (== active_mm right after it) in every
// process, non-NULL in pid 1, and its pgd verifies. Returns {rel, pgd offset}.
std::optional<std::pair<int64_t, int64_t>> FindMm(KernelMemory& mem, const InferInput& in,
                                                  const Windows& t) {
  for (int64_t rel = -kSpan; rel + 8 <= kSpan; rel += 4) {
    if (t.At(0, rel) != 0 || t.At(1, rel) < in.page_offset) continue;
    bool ok = true, some_null = false;
    for (size_t i = 1; i < t.w.size() && ok; ++i) {
      uint32_t mm = t.At(i, rel);
      some_null |= mm == 0;
      ok = mm == 0 || (mm >= in.page_offset && t.At(i, rel + 4) == mm);
    }
    if (!ok || !some_null) continue;
    if (auto pgd = FindPgd(mem, in, t.At(1, rel))) return std::pair{rel, *pgd};
  }
  return std::nullopt;
}

// flags: PF_KTHREAD exactly in init_task and the tasks without mm; no kernel pointer.
std::optional<int64_t> FindFlags(const Windows& t, int64_t mm_rel) {
  for (int64_t rel = -kSpan; rel + 4 <= kSpan; rel += 4) {
    bool ok = true;
    for (size_t i = 0; i < t.w.size() && ok; ++i) {
      uint32_t f = t.At(i, rel);
      bool kthread = i == 0 || t.At(i, mm_rel) == 0;
      ok = f < 0x80000000u && ((f & kPfKthread) != 0) == kthread;
    }
    if (ok) return rel;
  }
  return std::nullopt;
}

// __state, just before flags: 0 (TASK_RUNNING) in init_task, the boot CPU's idle task, which
// always runs (this rules out `usage`, a refcount of 1 in most tasks but 2 in init_task); only
// state bits below TASK_STATE_MAX (0x4000; TASK_FREEZABLE 0x2000 is one) elsewhere,
// TASK_INTERRUPTIBLE for at least a quarter of the tasks (sleepers are the vast majority of
// any system), and TASK_IDLE (0x402) in at least one: idle kernel threads (rcu_gp,
// workqueue rescuers) exist on every 4.14+ kernel, and it rules out thread_info.cpu, whose
// 0 and 1 look like states on a 2-CPU guest.
std::optional<int64_t> FindState(const Windows& t, int64_t flags_rel) {
  constexpr uint32_t kInterruptible = 0x1, kFreezable = 0x2000, kIdle = 0x402;
  for (int64_t rel = flags_rel - 4; rel >= flags_rel - 64 && rel >= -kSpan; rel -= 4) {
    if (t.At(0, rel) != 0) continue;
    size_t sleeping = 0, idle = 0;
    bool ok = true;
    for (size_t i = 1; i < t.w.size() && ok; ++i) {
      uint32_t s = t.At(i, rel);
      ok = (s & ~0x3fffu) == 0;
      sleeping += (s & ~kFreezable) == kInterruptible;
      idle += (s & ~kFreezable) == kIdle;
    }
    if (ok && idle > 0 && sleeping * 4 >= t.w.size() - 1) return rel;
  }
  return std::nullopt;
}

// arg_start < arg_end == env_start < env_end below PAGE_OFFSET, start_stack just before
// (mm_struct: start_brk, brk, start_stack, arg_start, arg_end, env_start, env_end), in every
// sampled user process. Returns the offset of arg_start.
std::optional<int64_t> FindArgs(KernelMemory& mem, const InferInput& in,
                                const std::vector<uint64_t>& mms) {
  std::vector<std::vector<uint32_t>> words;
  for (uint64_t mm : mms) {
    std::vector<uint32_t> w(kMaxMmScan / 4 + 4);
    if (!mem.Read(mm, std::as_writable_bytes(std::span(w))).ok()) continue;
    words.push_back(std::move(w));
  }
  if (words.empty()) return std::nullopt;
  for (size_t k = 1; k + 3 < kMaxMmScan / 4; ++k) {
    bool ok = true;
    for (const auto& w : words) {
      uint32_t stack = w[k - 1], a = w[k], b = w[k + 1], c = w[k + 2], e = w[k + 3];
      ok = ok && stack != 0 && stack <= a && a < b && b == c && c < e && e < in.page_offset &&
           e - a <= kMaxArgsEnv;
    }
    if (ok) return static_cast<int64_t>(k * 4);
  }
  return std::nullopt;
}

// mm_struct.mm_mt.ma_root: before pgd, and a tree of VMAs in every sampled user mm.
std::optional<VmaRangeLayout> FindVmaTree(KernelMemory& mem, uint64_t pgd,
                                          const std::vector<uint64_t>& mms) {
  for (uint64_t root = 0; root < pgd; root += 4) {
    VmaRangeLayout l{root, Maple32Layout()};
    bool ok = !mms.empty();
    for (uint64_t mm : mms) {
      auto v = mem.Pointer(mm + root);
      if (!v || (*v & 3) != 2 || *v <= 4096) {  // an encoded root node (xa_is_node)
        ok = false;
        break;
      }
      auto ranges = ListVmaRanges(mem, l, mm);
      ok = ranges && !ranges->empty();
      if (!ok) break;
    }
    if (ok) return l;
  }
  return std::nullopt;
}

// The windows as task-relative bytes, for the inferences that build on the task list.
TaskSample ToSample(Windows&& t, uint64_t tasks) {
  TaskSample s;
  s.base = static_cast<int64_t>(tasks) - kSpan;
  for (size_t i = 0; i < t.w.size(); ++i) {
    s.task.push_back(t.node[i] - tasks);
    s.bytes.push_back(std::move(t.w[i]));
  }
  return s;
}

// Every task_struct offset the layout already gives a member (and the bytes they cover), so
// a later inference does not take one of them for another member.
std::set<int64_t> TakenOffsets(const TaskLayout& l) {
  std::set<int64_t> taken;
  auto take = [&](uint64_t offset, uint64_t size) {
    for (uint64_t b = 0; b < size; b += 4) taken.insert(static_cast<int64_t>(offset + b));
  };
  take(l.tasks, 8);
  take(l.pid.offset, 8);
  take(l.comm, l.comm_size);
  take(l.mm, 8);
  take(l.real_parent, 4);
  take(l.flags.offset, l.flags.size);
  take(l.state.offset, l.state.size);
  return taken;
}

// Credentials, threads and kernel threads' full names (cred_layout_infer.h,
// thread_layout_infer.h, kthread_name_infer.h): each, when found, is added to the layout; when
// not, the layout says so (creds, threads false, worker_private 0) and `how` says why.
void InferCredsThreadsAndNames(KernelMemory& mem, const InferInput& in, const TaskSample& s,
                          TaskLayout& l, std::vector<Fact>& how) {
  const StaticRange image{in.search_start, in.search_start + in.search_bytes};
  const std::set<int64_t> taken = TakenOffsets(l);
  auto creds = InferCredLayout32(mem, s, l, taken, image, in.page_offset);
  l.creds = creds.has_value();
  if (creds) {
    l.real_cred = creds->real_cred;
    std::copy(std::begin(creds->ids), std::end(creds->ids), std::begin(l.cred_ids));
    how.push_back(creds->how);
  } else {
    how.push_back({"cred-offsets", "?",
                   creds.error().message() + ": status has no Uid/Gid lines"});
  }
  auto threads = InferThreadLayout32(mem, s, l, taken, image, in.page_offset);
  l.threads = threads.has_value();
  if (threads) {
    l.signal = threads->signal;
    l.has_thread_node = true;
    l.thread_node = threads->thread_node;
    l.signal_thread_head = threads->signal_thread_head;
    l.signal_nr_threads = threads->signal_nr_threads;
    how.push_back(threads->how);
  } else {
    how.push_back({"thread-offsets", "?",
                   threads.error().message() +
                       ": status has no Threads line, task/ lists the group leader only"});
  }
  auto names = InferKthreadNameLayout32(mem, s, l, taken, in.page_offset);
  if (names) {
    l.worker_private = names->worker_private;
    l.kthread_full_name = names->kthread_full_name;
    how.push_back(names->how);
  } else {
    how.push_back({"kthread-name-offsets", "?",
                   names.error().message() + ": kernel threads show their 15-byte comm"});
  }
}

}  // namespace

Result<InferredTasks> InferTaskLayout32(KernelMemory& mem, const InferInput& in) {
  if (mem.pointer_size() != 4) return InvalidArgumentError("inference is for 32-bit kernels");
  // Chunk by chunk from _etext, stopping after the first chunk with a ring: init_task lies a
  // few MiB into the image's data, and reading the rest would cost for nothing. Within that
  // chunk the longest ring wins (a stale copy of the comm has none).
  std::optional<Ring> ring;
  size_t candidates = 0, steps = 0;
  for (uint64_t off = 0; off < in.search_bytes && !ring && candidates < kMaxInitCandidates;
       off += kChunk) {
    VMEMFS_ASSIGN_OR_RETURN(auto comms,
                            FindSwapperComms(mem, in.search_start + off,
                                             std::min<uint64_t>(kChunk, in.search_bytes - off)));
    for (uint64_t comm : comms) {
      if (++candidates > kMaxInitCandidates) break;
      VMEMFS_ASSIGN_OR_RETURN(auto r, FindRing(mem, comm, in.page_offset, steps));
      if (r && (!ring || r->nodes.size() > ring->nodes.size())) ring = std::move(r);
    }
  }
  if (!ring) {
    return NotFoundError(fmt::format("no \"swapper/0\" task with a task ring in {} bytes after {}",
                                     in.search_bytes, Hex(in.search_start)));
  }
  VMEMFS_ASSIGN_OR_RETURN(Windows t, ReadWindows(mem, *ring));
  auto pid = FindPid(t);
  if (!pid) return NotFoundError("no pid/tgid offset fits the ring");
  auto parent = FindParent(t);
  if (!parent) return NotFoundError("no real_parent offset fits the ring");
  auto mm = FindMm(mem, in, t);
  if (!mm) return NotFoundError("no mm offset whose pgd maps _stext");
  auto flags = FindFlags(t, mm->first);
  auto state = flags ? FindState(t, *flags) : std::nullopt;

  const int64_t tasks = static_cast<int64_t>(parent->second);
  auto abs = [tasks](int64_t rel) { return static_cast<uint64_t>(tasks + rel); };
  for (int64_t rel : {pid.value(), mm->first, parent->first, flags.value_or(0),
                      state.value_or(0)}) {
    if (tasks + rel < 0) return NotFoundError("an inferred member lies before task_struct");
  }
  InferredTasks out;
  TaskLayout& l = out.layout;
  l.pointer_size = 4;
  l.partial = true;
  l.tasks = abs(0);
  l.pid = {abs(*pid), 4};
  l.tgid = {abs(*pid + 4), 4};
  l.comm = abs(static_cast<int64_t>(ring->comm_distance));
  l.comm_size = kCommSize;
  l.mm = abs(mm->first);
  l.active_mm = abs(mm->first + 4);
  l.real_parent = l.group_leader = abs(parent->first);
  // Not read unless InferCredsThreadsAndNames finds them (creds, threads).
  l.signal = l.real_cred = l.thread_group = l.thread_node = l.tasks;
  l.creds = l.threads = false;
  if (flags) l.flags = {abs(*flags), 4};
  if (state) l.state = {abs(*state), 4};
  l.mm_pgd = static_cast<uint64_t>(mm->second);
  std::vector<uint64_t> user_mms;
  for (size_t i = 1; i < t.w.size() && user_mms.size() < 8; ++i) {
    if (uint32_t m = t.At(i, mm->first); m != 0) user_mms.push_back(m);
  }
  auto args = FindArgs(mem, in, user_mms);
  l.mm_args = args.has_value();
  if (args) {
    l.mm_arg_start = *args;
    l.mm_arg_end = *args + 4;
    l.mm_env_start = *args + 8;
    l.mm_env_end = *args + 12;
    l.mm_start_stack = *args - 4;
    l.mm_brk = *args - 8;
    l.mm_start_brk = *args - 12;
  }
  out.vma_ranges = FindVmaTree(mem, l.mm_pgd, user_mms);
  std::vector<Fact> later;
  InferCredsThreadsAndNames(mem, in, ToSample(std::move(t), parent->second), l, later);
  l.task_size = l.tasks + kSpan;
  ComputeTaskWindow(l);
  out.init_task = ring->head - l.tasks;

  out.how.push_back({"init-task", Hex(out.init_task),
                     fmt::format("no BTF, no init_task in kallsyms: comm \"swapper/0\" in the "
                                 "image after _etext whose tasks ring has {} processes",
                                 ring->nodes.size())});
  out.how.push_back(
      {"task-offsets",
       fmt::format("tasks {} pid {} tgid {} comm {} mm {} real_parent {} flags {} __state {}",
                   Hex(l.tasks), Hex(l.pid.offset), Hex(l.tgid.offset), Hex(l.comm), Hex(l.mm),
                   Hex(l.real_parent), flags ? Hex(l.flags.offset) : "?",
                   state ? Hex(l.state.offset) : "?"),
       "inferred: pid 0 in init_task and 1 first, = tgid and distinct; real_parent of pid 1 "
       "is init_task; mm NULL in kernel threads, = active_mm; PF_KTHREAD exactly where mm is "
       "NULL; __state 0 in init_task, 1 in sleepers, 0x402 in idle kernel threads"});
  out.how.push_back(
      {"mm-offsets",
       fmt::format("pgd {} arg_start {} mm_mt.ma_root {}", Hex(l.mm_pgd),
                   args ? Hex(l.mm_arg_start) : "?",
                   out.vma_ranges ? Hex(out.vma_ranges->mm_mt_root) : "?"),
       "inferred: pgd maps _stext as the kernel's tables do; arg_end = env_start, both after "
       "start_stack; ma_root leads to VMAs {vm_start, vm_end, vm_mm} matching the tree"});
  out.how.insert(out.how.end(), later.begin(), later.end());
  return out;
}

}  // namespace vmemfs::vmi::linux_os
