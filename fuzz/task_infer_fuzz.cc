// Fuzzes the 32-bit task-list and VMA inference (task_layout_infer.h, vma_layout_infer.h) and
// what runs on their results (ListTasks, ListVmaRanges, ListVmas) over hostile kernel memory.
//
// Input: the "image data" after _etext, behind 2-level 32-bit page tables that map lowmem at
// 0xc0000000 (PAGE_OFFSET) with 4 MiB pages: physical 0 holds the page directory, the input
// follows at physical kImage. Checks that nothing crashes or hangs and that an inferred layout
// only names members inside its task_struct window.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fuzz_kernel.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/task_layout_infer.h"
#include "vmi/linux/process_info.h"
#include "vmi/linux/tasks.h"
#include "vmi/linux/vma_layout_infer.h"
#include "vmi/linux/vmas.h"
#include "vmi/linux/vma_ranges.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::Require;

constexpr uint64_t kPageOffset = 0xc0000000;
constexpr uint64_t kImage = 0x10000;
constexpr uint64_t kMaxInput = 1 << 20;

void Run(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return;
  auto driver = std::make_unique<testing::MemoryDriver>(kImage + size + 1);
  // PDEs for VA 0xc0000000.. -> physical 0.., 4 MiB pages: covers the input.
  for (uint32_t i = 0; i * (4u << 20) < kImage + size + 1; ++i) {
    driver->Put32(((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);
  }
  if (size > 0) driver->Put(kImage, data, size);
  auto guest = Guest::Open(std::move(driver));
  if (!guest) return;
  KernelMemory mem(**guest, AddressSpace{PagingMode::kLegacy32, 0}, 4);
  // _stext at the image's start: its translation is the check for a user mm's pgd.
  InferInput in{kPageOffset + kImage, size, kPageOffset, kPageOffset + kImage, kImage};
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
  VmaInferInput vin{kPageOffset, 0, {}, {}};
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
