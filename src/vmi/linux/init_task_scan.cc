#include "vmi/linux/init_task_scan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kMaxScanBytes = 64ull << 20;
constexpr int kMaxCandidates = 64;
constexpr size_t kChunk = 1 << 20;
constexpr std::string_view kName = "swapper";

// The comm field at `comm`: "swapper/0" or "swapper", NUL-padded.
bool IdleComm(const std::byte* comm, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(comm), size);
  text = text.substr(0, text.find('\0'));
  return text == "swapper/0" || text == "swapper";
}

class Scan {
 public:
  Scan(KernelMemory& memory, const TaskLayout& layout) : memory_(memory), layout_(layout) {}

  Result<uint64_t> Run(std::span<const ImageRun> image) {
    for (const ImageRun& run : image) {
      if (!run.writable) continue;
      VMEMFS_ASSIGN_OR_RETURN(std::optional<uint64_t> found, ScanRun(run));
      if (found) return *found;
      if (scanned_ >= kMaxScanBytes || candidates_ >= kMaxCandidates) break;
    }
    return NotFoundError(fmt::format(
        "no task_struct named swapper/0 whose task list links back in {} bytes of the kernel's "
        "writable data ({} candidates)",
        scanned_, candidates_));
  }

 private:
  Result<std::optional<uint64_t>> ScanRun(const ImageRun& run) {
    const size_t overlap = layout_.comm_size;
    std::vector<std::byte> chunk;
    for (uint64_t off = 0; off < run.size; off += kChunk) {
      if (scanned_ >= kMaxScanBytes || candidates_ >= kMaxCandidates) break;
      const uint64_t n = std::min<uint64_t>(kChunk + overlap, run.size - off);
      chunk.resize(n);
      scanned_ += n;
      Status s = memory_.Read(run.va + off, chunk);
      if (s.code() == ErrorCode::kFault) continue;
      VMEMFS_TRY(s);
      const auto* begin = reinterpret_cast<const char*>(chunk.data());
      std::string_view text(begin, n);
      for (size_t at = text.find(kName); at != std::string_view::npos && at + overlap <= n;
           at = text.find(kName, at + 1)) {
        if (!IdleComm(chunk.data() + at, layout_.comm_size)) continue;
        const uint64_t comm_va = run.va + off + at;
        if (comm_va < layout_.comm || candidates_ >= kMaxCandidates) continue;
        ++candidates_;
        if (IsInitTask(comm_va - layout_.comm)) return std::optional<uint64_t>(comm_va - layout_.comm);
      }
    }
    return std::optional<uint64_t>();
  }

  bool IsInitTask(uint64_t task) {
    auto pid = memory_.Unsigned(task + layout_.pid.offset, layout_.pid.size);
    if (!pid || *pid != 0) return false;
    const uint64_t head = task + layout_.tasks;
    auto next = memory_.U64(head);
    if (!next || *next == head) return false;
    auto back = memory_.U64(*next + 8);  // list_head.prev
    return back && *back == head;
  }

  KernelMemory& memory_;
  const TaskLayout& layout_;
  uint64_t scanned_ = 0;
  int candidates_ = 0;
};

}  // namespace

Result<uint64_t> FindInitTaskInImage(KernelMemory& memory, std::span<const ImageRun> image,
                                     const TaskLayout& layout) {
  if (layout.comm_size == 0) return NotFoundError("no comm in the task layout");
  return Scan(memory, layout).Run(image);
}

}  // namespace vmemfs::vmi::linux_os
