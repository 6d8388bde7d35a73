#include "vmi/linux/kthread_name_infer.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/hex.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kKthreadBytes = 64;  // full_name lies well inside (0x38 on i386 6.1)
constexpr size_t kCommBytes = 15;       // TASK_COMM_LEN - 1
constexpr size_t kMaxName = 63;         // as /proc's buffer
// Bounds against a hostile sample whose every word looks like a kthread pointer: the kernel
// threads checked (the 15-byte ones first) and the structs and strings read in all.
constexpr size_t kMaxKthreads = 256;
constexpr size_t kMaxReads = 1 << 16;

struct Kthread {
  size_t index;      // in the sample
  std::string comm;  // as task_struct.comm holds it
};

class Inference {
 public:
  Inference(KernelMemory& mem, const TaskSample& s, uint64_t page_offset)
      : mem_(mem), s_(s), page_offset_(page_offset) {}

  // The kernel threads of the sample with their comm; the 15-byte ones first.
  void Collect(const TaskLayout& l);
  std::optional<uint64_t> FullNameIn(int64_t worker_private);
  const std::vector<Kthread>& threads() const { return threads_; }
  size_t named() const { return named_; }
  bool over_budget() const { return kthreads_.size() + strings_.size() >= kMaxReads; }

 private:
  bool Ptr(uint64_t v) const { return v >= page_offset_ && v % 4 == 0; }
  // Word `off` of the struct kthread at va; nullopt if unreadable.
  std::optional<uint32_t> KthreadWord(uint64_t va, uint64_t off);
  const std::optional<std::string>& String(uint64_t va);

  KernelMemory& mem_;
  const TaskSample& s_;
  const uint64_t page_offset_;
  std::vector<Kthread> threads_;
  size_t named_ = 0;  // how many of threads_ have a full name, for the last fit
  std::map<uint64_t, std::optional<std::vector<uint32_t>>> kthreads_;
  std::map<uint64_t, std::optional<std::string>> strings_;
};

void Inference::Collect(const TaskLayout& l) {
  std::vector<Kthread> shorter;
  for (size_t i = 1; i < s_.task.size(); ++i) {
    auto mm = s_.U32(i, static_cast<int64_t>(l.mm));
    if (!mm || *mm != 0) continue;
    std::string comm;
    for (uint64_t b = 0; b < l.comm_size; b += 4) {
      auto w = s_.U32(i, static_cast<int64_t>(l.comm + b));
      if (!w) return;
      comm.append(reinterpret_cast<const char*>(&*w), 4);
    }
    comm.resize(std::min(comm.find('\0'), kCommBytes));
    (comm.size() == kCommBytes ? threads_ : shorter).push_back({i, comm});
  }
  threads_.insert(threads_.end(), shorter.begin(), shorter.end());
  if (threads_.size() > kMaxKthreads) threads_.resize(kMaxKthreads);
}

std::optional<uint32_t> Inference::KthreadWord(uint64_t va, uint64_t off) {
  auto it = kthreads_.find(va);
  if (it == kthreads_.end()) {
    if (over_budget()) return std::nullopt;
    std::vector<uint32_t> w(kKthreadBytes / 4);
    bool ok = mem_.Read(va, std::as_writable_bytes(std::span(w))).ok();
    it = kthreads_.emplace(va, ok ? std::optional(std::move(w)) : std::nullopt).first;
  }
  if (!it->second) return std::nullopt;
  return (*it->second)[off / 4];
}

const std::optional<std::string>& Inference::String(uint64_t va) {
  static const std::optional<std::string> kNone;
  auto it = strings_.find(va);
  if (it == strings_.end()) {
    if (over_budget()) return kNone;
    auto s = mem_.String(va, kMaxName);
    it = strings_.emplace(va, s ? std::optional(*s) : std::nullopt).first;
  }
  return it->second;
}

// With worker_private at `wp`: the full_name offset every kernel thread agrees on, with at
// least one 15-byte comm named in full. Every kernel thread has a struct kthread (copy_process
// gives one to each since 5.17), from kzalloc: 8-byte aligned (ARCH_KMALLOC_MINALIGN). That
// tells it from vfork_done, which a kernel thread points at its kthread's `exited`, 0x24
// bytes in: the same names are in reach from there.
std::optional<uint64_t> Inference::FullNameIn(int64_t wp) {
  for (const Kthread& t : threads_) {
    auto kthread = s_.U32(t.index, wp);
    if (!kthread || !Ptr(*kthread) || *kthread % 8 != 0) return std::nullopt;
  }
  for (uint64_t fn = 0; fn < kKthreadBytes; fn += 4) {
    size_t named = 0;
    bool ok = true;
    for (const Kthread& t : threads_) {
      auto name = KthreadWord(*s_.U32(t.index, wp), fn);
      if (!name) return std::nullopt;  // an unreadable struct kthread: not this wp
      if (*name == 0) continue;
      ok = t.comm.size() == kCommBytes && *name >= page_offset_;
      const std::optional<std::string>* text = ok ? &String(*name) : nullptr;
      ok = ok && *text && (*text)->size() > kCommBytes &&
           (*text)->compare(0, kCommBytes, t.comm) == 0;
      if (!ok) break;
      ++named;
    }
    if (ok && named > 0) {
      named_ = named;
      return fn;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<InferredKthreadNames> InferKthreadNameLayout32(KernelMemory& mem, const TaskSample& sample,
                                                      const TaskLayout& layout,
                                                      const std::set<int64_t>& taken,
                                                      uint64_t page_offset) {
  if (layout.comm_size == 0) return InvalidArgumentError("no comm offset");
  Inference inference(mem, sample, page_offset);
  inference.Collect(layout);
  const auto& threads = inference.threads();
  if (threads.empty() || threads.front().comm.size() != kCommBytes) {
    return NotFoundError("no kernel thread with a 15-byte comm to tell full names by");
  }
  for (int64_t wp = sample.first(); wp + 4 <= sample.end() && !inference.over_budget(); wp += 4) {
    if (taken.count(wp)) continue;
    auto fn = inference.FullNameIn(wp);
    if (!fn) continue;
    InferredKthreadNames out;
    out.worker_private = static_cast<uint64_t>(wp);
    out.kthread_full_name = *fn;
    out.how = {"kthread-name-offsets",
               fmt::format("worker_private {} kthread.full_name {}", Hex(wp), Hex(*fn)),
               fmt::format("inferred on {} kernel threads: NULL or a struct kthread whose "
                           "full_name is NULL or the 15-byte comm continued ({} named so)",
                           threads.size(), inference.named())};
    return out;
  }
  return NotFoundError(inference.over_budget()
                           ? "no worker_private/full_name pair found within the read budget"
                           : "no worker_private/full_name pair names the kernel threads");
}

}  // namespace vmemfs::vmi::linux_os
