// The 32-bit task-list inference on a hand-made kernel: 2-level page tables mapping lowmem at
// 0xc0000000, an init_task in "image data" and a ring of processes with known offsets that
// the inference must find by itself, credentials, thread groups and kernel threads' full names
// included (cred_layout_infer.h, thread_layout_infer.h, kthread_name_infer.h).
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
// Credentials and threads: task_struct.thread_node, signal, real_cred (cred after it);
// signal_struct.nr_threads and thread_head; cred.uid.
constexpr uint64_t kThreadNode = 0x140, kSignal = 0x1e0, kRealCred = 0x1f0;
constexpr uint64_t kNrThreads = 0x8, kThreadHead = 0x10, kCredUid = 0x4;
constexpr uint64_t kInitCred = 0x480000, kInitSignals = 0x481000;  // in the "image data"
constexpr uint64_t kThreadArea = 0x2800000;  // non-leader threads' task_structs, 8 KiB apart
constexpr uint64_t kCredArea = 0x3800000, kSignalArea = 0x3900000;  // 256 bytes apart
// Kernel threads' names: task_struct.worker_private -> struct kthread (64 bytes apart), its
// full_name; vfork_done points at the kthread's `exited`, 0x24 bytes in, as the kernel's do.
constexpr uint64_t kVforkDone = 0x220, kWorkerPrivate = 0x22c, kFullName = 0x38;
constexpr uint64_t kKthreadArea = 0x3a00000, kNameArea = 0x3b00000;

struct FakeTask {
  int pid;
  const char* comm;
  bool user;
  uint32_t uid = 0;  // ids: uid, gid = uid + 1, suid + 2, ... fsgid = uid + 7 (0 for root)
  int threads = 1;   // the others get tids pid + 1000, pid + 1001, ...
  const char* full_name = nullptr;  // a kernel thread's name beyond its 15-byte comm
};

inline uint32_t Va(uint64_t pa) { return static_cast<uint32_t>(pa + kPageOffset); }

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
      if (!t.user) PutKthread(addr[i + 1], kKthreadArea + i * 0x40, kNameArea + i * 0x40, t);
    }
    PutGroup({addr[0]}, kInitSignals, kInitCred, 0, 4);
    size_t other = 0;
    for (size_t i = 0; i < tasks.size(); ++i) {
      std::vector<uint64_t> group{addr[i + 1]};
      for (int k = 1; k < tasks[i].threads; ++k) {
        uint64_t t = kThreadArea + (other++) * 0x2000;
        PutTask(t, tasks[i].pid + 999 + k, tasks[i].comm, 0, addr[1], 0x00400040, 1);
        d_->Put32(t + kPid + 4, static_cast<uint32_t>(tasks[i].pid));  // tgid: the leader's
        group.push_back(t);
      }
      PutGroup(group, kSignalArea + i * 0x100, kCredArea + i * 0x100, tasks[i].uid, 1);
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
  void PutKthread(uint64_t task, uint64_t kthread, uint64_t name, const FakeTask& t) {
    d_->Put32(task + kWorkerPrivate, Va(kthread));
    d_->Put32(task + kVforkDone, Va(kthread + 0x24));
    if (t.full_name == nullptr) return;
    d_->Put(name, t.full_name, std::strlen(t.full_name) + 1);
    d_->Put32(kthread + kFullName, Va(name));
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
  // A thread group: its signal_struct (nr_threads, the thread_head ring through each task's
  // thread_node) and one cred shared by all (real_cred = cred).
  void PutGroup(const std::vector<uint64_t>& group, uint64_t signal, uint64_t cred, uint32_t uid,
                uint32_t usage) {
    d_->Put32(signal + kNrThreads, static_cast<uint32_t>(group.size()));
    std::vector<uint64_t> ring{signal + kThreadHead};
    for (uint64_t t : group) ring.push_back(t + kThreadNode);
    for (size_t i = 0; i < ring.size(); ++i) {
      d_->Put32(ring[i], Va(ring[(i + 1) % ring.size()]));
      d_->Put32(ring[i] + 4, Va(ring[(i + ring.size() - 1) % ring.size()]));
    }
    d_->Put32(cred, usage + static_cast<uint32_t>(group.size()));
    for (uint32_t k = 0; k < 8; ++k) d_->Put32(cred + kCredUid + 4 * k, uid ? uid + k : 0);
    for (uint64_t t : group) {
      d_->Put32(t + kSignal, Va(signal));
      d_->Put32(t + kRealCred, Va(cred));
      d_->Put32(t + kRealCred + 4, Va(cred));
    }
  }
  MemoryDriver* d_;
  std::unique_ptr<Guest> guest_;
  std::unique_ptr<KernelMemory> mem_;
};

std::vector<FakeTask> Sample() {
  std::vector<FakeTask> t = {{1, "init", true},
                             {2, "kthreadd", false},
                             {3, "rcu_gp", false},
                             {4, "rcu_tasks_kthre", false, 0, 1, "rcu_tasks_kthread"}};
  for (int pid = 10; pid < 40; ++pid) t.push_back({pid, "sleep", true});
  t.push_back({40, "threads", true, 1001, 4});
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
  EXPECT_TRUE(l.creds);
  EXPECT_EQ(l.real_cred, kRealCred);
  for (uint64_t k = 0; k < 8; ++k) EXPECT_EQ(l.cred_ids[k], kCredUid + 4 * k) << k;
  EXPECT_TRUE(l.threads);
  EXPECT_TRUE(l.has_thread_node);
  EXPECT_EQ(l.signal, kSignal);
  EXPECT_EQ(l.thread_node, kThreadNode);
  EXPECT_EQ(l.signal_thread_head, kThreadHead);
  EXPECT_EQ(l.signal_nr_threads.offset, kNrThreads);
  EXPECT_EQ(l.worker_private, kWorkerPrivate);
  EXPECT_EQ(l.kthread_full_name, kFullName);
  EXPECT_EQ(l.signal_nr_threads.size, 4u);
  EXPECT_FALSE(got->how.empty());
}

std::string How(const InferredTasks& got, const std::string& key) {
  for (const Fact& f : got.how) {
    if (f.key == key) return f.value + " # " + f.how;
  }
  return "";
}

TEST(TaskLayoutInferTest, AKernelThreadWithIdsLeavesCredentialsOut) {
  Fake f(Sample());
  f.driver().Put32(kCredArea + 1 * 0x100 + kCredUid, 5);  // kthreadd's uid: not root
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_FALSE(got->layout.creds);
  EXPECT_TRUE(got->layout.threads);
  EXPECT_EQ(How(*got, "cred-offsets").rfind("? # ", 0), 0u) << How(*got, "cred-offsets");
  auto tasks = ListTasks(f.mem(), got->layout, got->init_task);
  ASSERT_TRUE(tasks.has_value());
  EXPECT_FALSE(tasks->back().has_ids);
  EXPECT_TRUE(tasks->back().has_threads);
}

TEST(TaskLayoutInferTest, AThreadOfAnotherGroupLeavesThreadsOut) {
  Fake f(Sample());
  f.driver().Put32(kThreadArea + kPid + 4, 12);  // the first extra thread claims tgid 12
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_TRUE(got->layout.creds);
  EXPECT_FALSE(got->layout.threads);
  EXPECT_EQ(How(*got, "thread-offsets").rfind("? # ", 0), 0u) << How(*got, "thread-offsets");
  auto tasks = ListTasks(f.mem(), got->layout, got->init_task);
  ASSERT_TRUE(tasks.has_value());
  EXPECT_EQ(tasks->back().threads.size(), 1u);  // the leader only
  EXPECT_FALSE(tasks->back().has_threads);
}

TEST(TaskLayoutInferTest, CredMagicMovesTheIdsPastTheDebugWords) {
  Fake f(Sample());
  // CONFIG_DEBUG_CREDENTIALS: subscribers (1, which also rules out uid at 4), put_addr, magic,
  // then the ids.
  std::vector<uint64_t> creds{kInitCred};
  for (size_t i = 0; i < Sample().size(); ++i) creds.push_back(kCredArea + i * 0x100);
  for (uint64_t c : creds) {
    uint32_t ids[8];
    std::memcpy(ids, f.driver().Bytes(c + kCredUid, sizeof ids).data(), sizeof ids);
    const uint32_t debug[3] = {1, 0, 0x43736564};
    f.driver().Put(c + 4, debug, sizeof debug);
    f.driver().Put(c + 16, ids, sizeof ids);
  }
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ASSERT_TRUE(got->layout.creds) << How(*got, "cred-offsets");
  EXPECT_EQ(got->layout.cred_ids[kUid], 16u);
  EXPECT_EQ(got->layout.cred_ids[kFsgid], 16u + 28);
}

TEST(TaskLayoutInferTest, TwoCredPairsThatFitAreAmbiguous) {
  Fake f(Sample());
  // A second adjacent pair of equal pointers to the same creds, as if the kernel had two.
  auto copy = [&](uint64_t task) {
    uint32_t v;
    std::memcpy(&v, f.driver().Bytes(task + kRealCred, 4).data(), 4);
    f.driver().Put32(task + 0x2f0, v);
    f.driver().Put32(task + 0x2f4, v);
  };
  copy(kInitTask);
  for (size_t i = 0; i < Sample().size(); ++i) copy(kTaskArea + i * 0x2000);
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_FALSE(got->layout.creds);
  EXPECT_NE(How(*got, "cred-offsets").find("ambiguous"), std::string::npos);
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
    EXPECT_EQ(t.name, want[i].full_name ? want[i].full_name : want[i].comm);
    EXPECT_EQ(t.kernel_thread, !want[i].user);
    EXPECT_EQ(t.ppid, want[i].pid <= 2 ? 0 : 1);
    EXPECT_EQ(t.state, want[i].user ? 'S' : 'I');
    EXPECT_EQ(t.dtb.has_value(), want[i].user);
    EXPECT_TRUE(t.has_ids);
    EXPECT_TRUE(t.has_threads);
    for (uint32_t k = 0; k < 8; ++k) {
      EXPECT_EQ(t.ids[k], want[i].uid ? want[i].uid + k : 0) << t.pid << " id " << k;
    }
    EXPECT_EQ(t.nr_threads, want[i].threads) << t.pid;
    ASSERT_EQ(t.threads.size(), static_cast<size_t>(want[i].threads)) << t.pid;
    EXPECT_EQ(t.threads[0].tid, t.pid);
    for (int k = 1; k < want[i].threads; ++k) EXPECT_EQ(t.threads[k].tid, t.pid + 999 + k);
    EXPECT_TRUE(t.error.ok()) << t.error.ToString();
  }
}

TEST(TaskLayoutInferTest, WithoutALongKernelThreadNameNamesAreLeftOut) {
  auto sample = Sample();
  sample[3].full_name = nullptr;  // nothing tells worker_private and full_name apart
  Fake f(sample);
  auto got = InferTaskLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->layout.worker_private, 0u);
  bool said = false;
  for (const Fact& fact : got->how) said |= fact.key == "kthread-name-offsets" && fact.value == "?";
  EXPECT_TRUE(said);
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
