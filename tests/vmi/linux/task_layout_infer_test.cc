// The 32-bit task-list inference on a hand-made kernel: 2-level page tables mapping lowmem at
// 0xc0000000, an init_task in "image data" and a ring of processes with known offsets that
// the inference must find by itself.
#include "vmi/linux/task_layout_infer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/tasks.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::MemoryDriver;

constexpr uint64_t kPageOffset = 0xc0000000;
constexpr uint64_t kPgd = 0x100000;         // physical
constexpr uint64_t kStextPa = 0x1000000;
constexpr uint64_t kImageData = 0x400000;   // physical start of the searched "image data"
constexpr uint64_t kInitTask = 0x500040;    // physical
constexpr uint64_t kTaskArea = 0x2000000;   // other task_structs, 8 KiB apart
constexpr uint64_t kMmArea = 0x3000000;     // mm_structs, 4 KiB apart

// The offsets the fake kernel uses (the inference is not told).
constexpr uint64_t kState = 0x10, kFlags = 0x14, kTasks = 0x100, kMm = 0x120, kPid = 0x180,
                   kParent = 0x190, kComm = 0x200;
constexpr uint64_t kMmTreeRoot = 0x8, kMmPgd = 0x20, kArgStart = 0x60;

struct FakeTask {
  int pid;
  const char* comm;
  bool user;
};

class Fake {
 public:
  explicit Fake(const std::vector<FakeTask>& tasks) {
    auto d = std::make_unique<MemoryDriver>(64 << 20);
    d_ = d.get();
    // 16 PSE 4 MiB pages: VA 0xc0000000 + x -> x for the first 64 MiB.
    for (uint32_t i = 0; i < 16; ++i) {
      d_->Put32(kPgd + ((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);
    }
    std::vector<uint64_t> addr;  // physical task_struct addresses, init first
    addr.push_back(kInitTask);
    for (size_t i = 0; i < tasks.size(); ++i) addr.push_back(kTaskArea + i * 0x2000);
    PutTask(addr[0], 0, "swapper/0", 0, addr[0], 0x00200000, 0);
    for (size_t i = 0; i < tasks.size(); ++i) {
      const FakeTask& t = tasks[i];
      uint64_t mm = 0;
      if (t.user) {
        mm = kMmArea + i * 0x1000;
        d_->Put32(mm + kMmPgd, static_cast<uint32_t>(kPgd + kPageOffset));
        const uint32_t stack_args_env[5] = {0xbf000000, 0xbf000100, 0xbf000110, 0xbf000110,
                                            0xbf000200};
        d_->Put(mm + kArgStart - 4, stack_args_env, sizeof stack_args_env);
        PutVmaTree(mm);
      }
      // Parent: init for pid 1 and 2, else pid 1.
      uint64_t parent = t.pid <= 2 ? addr[0] : addr[1];
      PutTask(addr[i + 1], t.pid, t.comm, mm, parent, t.user ? 0x00400100 : 0x00208040,
              t.user ? 1 : 0x402);
    }
    for (size_t i = 0; i < addr.size(); ++i) {  // the ring
      uint64_t next = addr[(i + 1) % addr.size()], prev = addr[(i + addr.size() - 1) % addr.size()];
      d_->Put32(addr[i] + kTasks, static_cast<uint32_t>(next + kTasks + kPageOffset));
      d_->Put32(addr[i] + kTasks + 4, static_cast<uint32_t>(prev + kTasks + kPageOffset));
    }
    guest_ = std::move(*Guest::Open(std::move(d)));
    mem_ = std::make_unique<KernelMemory>(*guest_, AddressSpace{PagingMode::kLegacy32, kPgd}, 4);
  }
  MemoryDriver& driver() { return *d_; }
  KernelMemory& mem() { return *mem_; }
  static InferInput Input() {
    return {kImageData + kPageOffset, 4 << 20, kPageOffset, kStextPa + kPageOffset, kStextPa};
  }

 private:
  void PutTask(uint64_t at, int pid, const char* comm, uint64_t mm, uint64_t parent,
               uint32_t flags, uint32_t state) {
    d_->Put32(at + kState, state);
    d_->Put32(at + kFlags, flags);
    d_->Put32(at + kPid, static_cast<uint32_t>(pid));
    d_->Put32(at + kPid + 4, static_cast<uint32_t>(pid));
    d_->Put32(at + kParent, static_cast<uint32_t>(parent + kPageOffset));
    d_->Put32(at + kMm, mm ? static_cast<uint32_t>(mm + kPageOffset) : 0);
    d_->Put32(at + kMm + 4, mm ? static_cast<uint32_t>(mm + kPageOffset) : 0);
    char name[16] = {};
    std::strncpy(name, comm, 15);
    d_->Put(at + kComm, name, 16);
  }
  // mm_mt at mm + 0 (ma_root at +8): one root leaf_64 node (32-bit geometry) with two VMAs,
  // [0x8048000, 0x804a000) and [0xbf000000, 0xbf021000), and the gaps around them.
  void PutVmaTree(uint64_t mm) {
    const uint64_t node = mm + 0x800, vma1 = mm + 0x400, vma2 = mm + 0x440;
    const uint32_t va_mm = static_cast<uint32_t>(mm + kPageOffset);
    d_->Put32(mm + kMmTreeRoot, static_cast<uint32_t>(node + kPageOffset) | (1 << 3) | 2);
    d_->Put32(node, va_mm | 1);  // parent: the tree itself (MA_ROOT_PARENT)
    const uint32_t pivots[4] = {0x8047fff, 0x8049fff, 0xbeffffff, 0xbf020fff};
    d_->Put(node + 4, pivots, sizeof pivots);
    const uint32_t slots[5] = {0, static_cast<uint32_t>(vma1 + kPageOffset), 0,
                               static_cast<uint32_t>(vma2 + kPageOffset), 0};
    d_->Put(node + 128, slots, sizeof slots);
    const uint8_t end = 4;  // maple_metadata.end: the last pivot is 0, so the meta counts
    d_->Put(node + 252, &end, 1);
    const uint32_t v1[3] = {0x8048000, 0x804a000, va_mm}, v2[3] = {0xbf000000, 0xbf021000, va_mm};
    d_->Put(vma1, v1, sizeof v1);
    d_->Put(vma2, v2, sizeof v2);
  }
  MemoryDriver* d_;
  std::unique_ptr<Guest> guest_;
  std::unique_ptr<KernelMemory> mem_;
};

std::vector<FakeTask> Sample() {
  std::vector<FakeTask> t = {{1, "init", true}, {2, "kthreadd", false}, {3, "rcu_gp", false}};
  for (int pid = 10; pid < 40; ++pid) t.push_back({pid, "sleep", true});
  return t;
}

TEST(TaskLayoutInferTest, FindsEveryOffsetAndInitTask) {
  Fake f(Sample());
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  const TaskLayout& l = got->layout;
  EXPECT_EQ(got->init_task, kInitTask + kPageOffset);
  EXPECT_TRUE(l.partial);
  EXPECT_EQ(l.pointer_size, 4u);
  EXPECT_EQ(l.tasks, kTasks);
  EXPECT_EQ(l.pid.offset, kPid);
  EXPECT_EQ(l.tgid.offset, kPid + 4);
  EXPECT_EQ(l.comm, kComm);
  EXPECT_EQ(l.mm, kMm);
  EXPECT_EQ(l.real_parent, kParent);
  EXPECT_EQ(l.flags.offset, kFlags);
  EXPECT_EQ(l.state.offset, kState);
  EXPECT_EQ(l.mm_pgd, kMmPgd);
  EXPECT_TRUE(l.mm_args);
  EXPECT_EQ(l.mm_arg_start, kArgStart);
  ASSERT_TRUE(got->vma_ranges.has_value());
  EXPECT_EQ(got->vma_ranges->mm_mt_root, kMmTreeRoot);
  EXPECT_FALSE(got->how.empty());
}

TEST(TaskLayoutInferTest, VmaRangesFromThe32BitMapleTree) {
  Fake f(Sample());
  VmaRangeLayout l{kMmTreeRoot, Maple32Layout()};
  auto ranges = ListVmaRanges(f.mem(), l, kMmArea + kPageOffset);
  ASSERT_TRUE(ranges.has_value()) << ranges.error().ToString();
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[0].start, 0x8048000u);
  EXPECT_EQ((*ranges)[0].end, 0x804a000u);
  EXPECT_EQ((*ranges)[1].start, 0xbf000000u);
  EXPECT_EQ((*ranges)[1].end, 0xbf021000u);
  // A VMA of another mm in this mm's tree is garbage, not a VMA.
  f.driver().Put32(kMmArea + 0x440 + 8, 0xc1234000);
  auto bad = ListVmaRanges(f.mem(), l, kMmArea + kPageOffset);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kBadData);
}

TEST(TaskLayoutInferTest, TheInferredLayoutWalksTheTaskList) {
  Fake f(Sample());
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  WalkReport report;
  auto tasks = ListTasks(f.mem(), got->layout, got->init_task, {}, &report);
  ASSERT_TRUE(tasks.has_value()) << tasks.error().ToString();
  EXPECT_TRUE(report.stopped.ok()) << report.stopped.ToString();
  auto want = Sample();
  ASSERT_EQ(tasks->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const Task& t = (*tasks)[i];
    EXPECT_EQ(t.pid, want[i].pid);
    EXPECT_EQ(t.comm, want[i].comm);
    EXPECT_EQ(t.kernel_thread, !want[i].user);
    EXPECT_EQ(t.ppid, want[i].pid <= 2 ? 0 : 1);
    EXPECT_EQ(t.state, want[i].user ? 'S' : 'I');
    EXPECT_EQ(t.dtb.has_value(), want[i].user);
    EXPECT_FALSE(t.has_ids);
    EXPECT_FALSE(t.has_threads);
    EXPECT_EQ(t.threads.size(), 1u);
  }
}

TEST(TaskLayoutInferTest, NoSwapperCommIsNotFound) {
  Fake f(Sample());
  f.driver().Put(kInitTask + kComm, "swapper/1", 9);
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

TEST(TaskLayoutInferTest, ABrokenRingIsNotTrusted) {
  Fake f(Sample());
  // The first process's prev no longer points back at init_task.tasks.
  f.driver().Put32(kTaskArea + kTasks + 4, 0xdeadbeef);
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

TEST(TaskLayoutInferTest, OnlyFor32BitKernels) {
  Fake f(Sample());
  KernelMemory wide(f.mem().guest(), f.mem().kernel(), 8);
  EXPECT_EQ(InferTaskLayout32(wide, Fake::Input()).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
