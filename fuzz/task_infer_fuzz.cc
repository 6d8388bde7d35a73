// Fuzzes the 32-bit task-list and VMA inference (task_layout_infer.h, vma_layout_infer.h) and
// what runs on their results (ListTasks, ListVmaRanges, ListVmas) over hostile kernel memory.
//
// Input: the "image data" after _etext, mapped as FuzzKernel32 (fuzz_kernel.h) maps it. Checks
// that nothing crashes or hangs and that an inferred layout only names members inside its
// task_struct window.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuzz_kernel.h"
#include "vmi/linux/task_layout_infer.h"
#include "vmi/linux/process_info.h"
#include "vmi/linux/tasks.h"
#include "vmi/linux/vma_layout_infer.h"
#include "vmi/linux/vmas.h"
#include "vmi/linux/vma_ranges.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::FuzzKernel32;
using fuzz::Require;

constexpr uint64_t kMaxInput = 1 << 20;

void Run(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return;
  FuzzKernel32 kernel({data, size});
  KernelMemory& mem = kernel.mem();
  // _stext at the image's start: its translation is the check for a user mm's pgd.
  InferInput in{FuzzKernel32::Va(0), size, FuzzKernel32::kPageOffset, FuzzKernel32::Va(0),
                FuzzKernel32::kImage};
  auto inferred = InferTaskLayout32(mem, in);
  if (!inferred) return;
  const TaskLayout& l = inferred->layout;
  Require(l.partial && l.pointer_size == 4 && l.comm_size == 16);
  Require(l.window_start + l.window_size <= l.task_size);
  TaskLimits limits{.max_tasks = 64, .max_threads_per_process = 4};
  WalkReport report;
  auto tasks = ListTasks(mem, l, inferred->init_task, limits, &report);
  if (!tasks) return;
  Require(tasks->size() <= limits.max_tasks);
  VmaInferInput vin{FuzzKernel32::kPageOffset, 0, {}, {}};
  for (const Task& t : *tasks) {
    // Threads beyond the leader only where their offsets were inferred, within the cap.
    Require(t.comm.size() < 16 &&
            t.threads.size() <= (l.threads ? limits.max_threads_per_process + 1 : 1));
    Require(t.has_ids == l.creds && t.has_threads == l.threads);
    if (inferred->vma_ranges && t.mm != 0) {
      vin.ranges = *inferred->vma_ranges;
      auto mm = ReadMmInfo(mem, l, t);
      if (auto ranges = ListVmaRanges(mem, *inferred->vma_ranges, t.mm)) {
        for (const VmaRange& r : *ranges) Require(r.start < r.end);
        if (mm && vin.samples.size() < 4) {
          vin.samples.push_back({t.mm, mm->start_stack, mm->start_brk, mm->brk, *ranges});
        }
      }
    }
  }
  if (vin.samples.empty()) return;
  auto vmas = InferVmaLayout32(mem, vin);
  if (!vmas) return;
  for (const VmaSample& s : vin.samples) {
    if (auto list = ListVmas(mem, vmas->layout, s.mm)) Require(list->size() == s.vmas.size());
  }
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
