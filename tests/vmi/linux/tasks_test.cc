#include "vmi/linux/tasks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "base/hex.h"
#include "tasks_test_guest.h"
#include "vmi/linux/process_info.h"

namespace vmemfs::vmi::linux_os {
namespace {

using testing::SyntheticKernel;

// A compact, made-up task_struct: the walkers must only use the layout's numbers.
TaskLayout SyntheticLayout() {
  TaskLayout l;
  l.task_size = 0x100;
  l.tasks = 0x10;
  l.pid = {0x20, 4};
  l.tgid = {0x24, 4};
  l.comm = 0x30;
  l.comm_size = 16;
  l.mm = 0x40;
  l.active_mm = 0x48;
  l.real_parent = 0x50;
  l.group_leader = 0x58;
  l.signal = 0x60;
  l.real_cred = 0x68;
  l.state = {0x70, 4};
  l.exit_state = {0x74, 4};
  l.flags = {0x78, 4};
  l.has_thread_node = true;
  l.thread_node = 0x80;
  l.signal_thread_head = 0x10;  // in signal_struct
  l.signal_nr_threads = {0x8, 4};
  for (int i = 0; i < 8; ++i) l.cred_ids[i] = 4 + 4 * i;
  l.mm_pgd = 0x8;
  l.mm_arg_start = 0x10;
  l.mm_arg_end = 0x18;
  l.mm_env_start = 0x20;
  l.mm_env_end = 0x28;
  l.mm_start_brk = 0x30;
  l.mm_brk = 0x38;
  l.mm_start_stack = 0x40;
  l.mm_exe_file = 0x48;
  ComputeTaskWindow(l);
  return l;
}

// Objects live at PA 0x10000 + 0x1000 * slot (one page each), seen through the direct map.
class SyntheticTasksTest : public ::testing::Test {
 protected:
  static uint64_t Slot(int n) { return SyntheticKernel::Kva(0x10000 + 0x1000 * uint64_t(n)); }

  // A task in slot n whose signal_struct is in slot n + 1 and cred in slot n + 2 (when given).
  uint64_t MakeTask(int slot, int pid, int tgid, const char* comm, uint64_t parent,
                    uint32_t state = 1, uint64_t mm = 0, uint32_t flags = 0) {
    uint64_t t = Slot(slot);
    k_.K32(t + layout_.pid.offset, pid);
    k_.K32(t + layout_.tgid.offset, tgid);
    k_.Put(t - SyntheticKernel::kDirectMap + layout_.comm, comm, strlen(comm) + 1);
    k_.K64(t + layout_.real_parent, parent);
    k_.K32(t + layout_.state.offset, state);
    k_.K32(t + layout_.flags.offset, flags);
    k_.K64(t + layout_.mm, mm);
    return t;
  }
  void SetSignal(uint64_t task, uint64_t signal, int nr_threads) {
    k_.K64(task + layout_.signal, signal);
    k_.K32(signal + layout_.signal_nr_threads.offset, nr_threads);
  }
  void SetCred(uint64_t task, uint64_t cred, uint32_t base) {
    k_.K64(task + layout_.real_cred, cred);
    for (int i = 0; i < 8; ++i) k_.K32(cred + layout_.cred_ids[i], base + i);
  }
  // init_task (slot 0) and processes in slots 4, 8, ... linked on init_task.tasks, each alone
  // in its thread group.
  std::vector<uint64_t> MakeProcesses(int n) {
    uint64_t init = MakeTask(0, 0, 0, "swapper/0", 0);
    std::vector<uint64_t> nodes{init + layout_.tasks}, tasks;
    for (int i = 0; i < n; ++i) {
      uint64_t t = MakeTask(4 + 3 * i, 100 + i, 100 + i, "proc", init);
      SetSignal(t, Slot(5 + 3 * i), 1);
      k_.Ring({Slot(5 + 3 * i) + layout_.signal_thread_head, t + layout_.thread_node});
      nodes.push_back(t + layout_.tasks);
      tasks.push_back(t);
    }
    k_.Ring(nodes);
    return tasks;
  }
  Result<std::vector<Task>> List(const TaskLimits& limits = {}) {
    report_ = {};
    return ListTasks(k_.mem(), layout_, Slot(0), limits, &report_);
  }

  SyntheticKernel k_;
  TaskLayout layout_ = SyntheticLayout();
  WalkReport report_;
};

TEST_F(SyntheticTasksTest, ListsProcessesThreadsAndFields) {
  uint64_t init = MakeTask(0, 0, 0, "swapper/0", 0);
  uint64_t mm = Slot(20);
  k_.K64(mm + layout_.mm_pgd, SyntheticKernel::Kva(SyntheticKernel::kPml4));
  uint64_t a = MakeTask(1, 1, 1, "init", init, 1, mm);
  uint64_t b = MakeTask(2, 2, 2, "kthreadd", init, 0x402, 0, kPfKthread);
  uint64_t a2 = MakeTask(3, 7, 1, "init-thread", a, 0);
  SetSignal(a, Slot(10), 2);
  k_.K64(a2 + layout_.signal, Slot(10));
  SetSignal(b, Slot(11), 1);
  SetCred(a, Slot(12), 1000);
  k_.Ring({init + layout_.tasks, a + layout_.tasks, b + layout_.tasks});
  // The thread list holds the leader too, not necessarily first.
  k_.Ring(
      {Slot(10) + layout_.signal_thread_head, a2 + layout_.thread_node, a + layout_.thread_node});
  k_.Ring({Slot(11) + layout_.signal_thread_head, b + layout_.thread_node});

  auto tasks = List();
  ASSERT_TRUE(tasks) << tasks.error().ToString();
  ASSERT_EQ(tasks->size(), 2u);  // not pid 0
  EXPECT_TRUE(report_.errors.empty()) << report_.errors[0].ToString();
  const Task& t1 = (*tasks)[0];
  EXPECT_EQ(t1.address, a);
  EXPECT_EQ(t1.pid, 1);
  EXPECT_EQ(t1.ppid, 0);
  EXPECT_EQ(t1.comm, "init");
  EXPECT_EQ(t1.state, 'S');
  EXPECT_FALSE(t1.kernel_thread);
  EXPECT_EQ(t1.ids[kUid], 1000u);
  EXPECT_EQ(t1.ids[kFsgid], 1007u);
  ASSERT_TRUE(t1.dtb);
  EXPECT_EQ(*t1.dtb, SyntheticKernel::kPml4);
  EXPECT_EQ(t1.nr_threads, 2);
  ASSERT_EQ(t1.threads.size(), 2u);
  EXPECT_EQ(t1.threads[0].tid, 1);
  EXPECT_EQ(t1.threads[1].tid, 7);
  EXPECT_EQ(t1.threads[1].address, a2);
  const Task& t2 = (*tasks)[1];
  EXPECT_EQ(t2.comm, "kthreadd");
  EXPECT_EQ(t2.state, 'I');
  EXPECT_TRUE(t2.kernel_thread);
  EXPECT_FALSE(t2.dtb);
  EXPECT_TRUE(t2.error.ok()) << t2.error.ToString();  // no cred pointer: ids stay 0
}

TEST_F(SyntheticTasksTest, CommIsCutAtItsSize) {
  auto procs = MakeProcesses(1);
  k_.Put(procs[0] - SyntheticKernel::kDirectMap + layout_.comm, "0123456789abcdefXYZ", 19);
  auto tasks = List();
  ASSERT_TRUE(tasks);
  EXPECT_EQ((*tasks)[0].comm, "0123456789abcde");
}

TEST_F(SyntheticTasksTest, CapStopsAbsurdlyLongLists) {
  MakeProcesses(50);
  auto tasks = List({.max_tasks = 20});
  ASSERT_TRUE(tasks);
  EXPECT_EQ(tasks->size(), 20u);
  EXPECT_TRUE(report_.truncated);
  EXPECT_FALSE(report_.stopped.ok());
  EXPECT_TRUE(report_.errors.empty());
  EXPECT_EQ(List()->size(), 50u);
  EXPECT_FALSE(report_.truncated);
}

TEST_F(SyntheticTasksTest, GarbagePointerEndsWalkWithPartialResult) {
  auto procs = MakeProcesses(5);
  k_.K64(procs[2] + layout_.tasks, 0xdead000000000000);  // unmapped
  auto tasks = List();
  ASSERT_TRUE(tasks);
  EXPECT_EQ(tasks->size(), 3u);
  // The walk names the task whose link is bad.
  EXPECT_NE(report_.stopped.message().find("at task " + Hex(procs[2])),
            std::string::npos)
      << report_.stopped.ToString();
  EXPECT_FALSE(report_.truncated);
}

TEST_F(SyntheticTasksTest, CycleThatAvoidsTheHeadEnds) {
  auto procs = MakeProcesses(5);
  // 4 -> 2, with 2's prev rewritten to match: the prev check alone cannot see it.
  k_.K64(procs[4] + layout_.tasks, procs[2] + layout_.tasks);
  k_.K64(procs[2] + layout_.tasks + 8, procs[4] + layout_.tasks);
  auto tasks = List();
  ASSERT_TRUE(tasks);
  EXPECT_LE(tasks->size(), 5u + 8);  // Brent: found within a few laps
  EXPECT_FALSE(report_.stopped.ok());
}

TEST_F(SyntheticTasksTest, SelfLoopAndBrokenBackLinkEnd) {
  auto procs = MakeProcesses(3);
  k_.K64(procs[1] + layout_.tasks, procs[1] + layout_.tasks);  // next = itself
  auto tasks = List();
  ASSERT_TRUE(tasks);
  EXPECT_EQ(tasks->size(), 2u);
  EXPECT_NE(report_.stopped.message().find("next->prev mismatch"), std::string::npos)
      << report_.stopped.ToString();
}

TEST_F(SyntheticTasksTest, BrokenThreadListOnlyMarksThatTask) {
  auto procs = MakeProcesses(3);
  k_.K64(Slot(5 + 3) + layout_.signal_thread_head, 0x1234);  // process 1's thread list
  k_.K64(procs[2] + layout_.real_cred, SyntheticKernel::Kva(SyntheticKernel::kRam));  // no RAM
  auto tasks = List();
  ASSERT_TRUE(tasks);
  ASSERT_EQ(tasks->size(), 3u);
  EXPECT_TRUE((*tasks)[0].error.ok());
  EXPECT_FALSE((*tasks)[1].error.ok());
  EXPECT_EQ((*tasks)[1].threads.size(), 1u);  // the leader is always there
  EXPECT_FALSE((*tasks)[2].error.ok());
  EXPECT_EQ(report_.errors.size(), 2u);
}

TEST_F(SyntheticTasksTest, UnreadableHeadFails) {
  auto tasks = ListTasks(k_.mem(), layout_, 0xdead000000000000, {}, nullptr);
  EXPECT_FALSE(tasks);
}

TEST_F(SyntheticTasksTest, AbsurdLayoutIsRefused) {
  layout_.window_size = 1ull << 40;
  EXPECT_EQ(ReadTask(k_.mem(), layout_, Slot(0)).error().code(), ErrorCode::kInvalidArgument);
}

TEST(TaskStateLetterTest, FollowsProcArray) {
  EXPECT_EQ(TaskStateLetter(0, 0), 'R');
  EXPECT_EQ(TaskStateLetter(0x1, 0), 'S');
  EXPECT_EQ(TaskStateLetter(0x2, 0), 'D');
  EXPECT_EQ(TaskStateLetter(0x102, 0), 'D');  // TASK_KILLABLE
  EXPECT_EQ(TaskStateLetter(0x104, 0), 'T');  // TASK_STOPPED
  EXPECT_EQ(TaskStateLetter(0x8, 0), 't');
  EXPECT_EQ(TaskStateLetter(0x80, 0x10), 'X');
  EXPECT_EQ(TaskStateLetter(0x80, 0x20), 'Z');
  EXPECT_EQ(TaskStateLetter(0x40, 0), 'P');
  EXPECT_EQ(TaskStateLetter(0x402, 0), 'I');   // TASK_IDLE
  EXPECT_EQ(TaskStateLetter(0x1000, 0), 'D');  // TASK_RTLOCK_WAIT
  EXPECT_EQ(TaskStateLetter(0x2001, 0), 'S');  // TASK_FREEZABLE | TASK_INTERRUPTIBLE
  EXPECT_EQ(TaskStateLetter(0xffffffff, 0xffffffff), 'I');
  EXPECT_EQ(TaskStateName('S'), "S (sleeping)");
}

// --- Real guests: the walk against the guest's own /proc (truth/ps.tsv). ---

class RealTasksTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::string why;
    g_ = testing::OpenRealGuest(GetParam(), &why);
    if (g_ == nullptr) GTEST_SKIP() << why;
  }
  testing::RealGuest* g_ = nullptr;
};

bool IsTestProcess(const std::string& comm) {
  return comm == "marker" || comm == "ticker" || comm == "sleep";
}

TEST_P(RealTasksTest, MatchesTruthPs) {
  WalkReport report;
  auto start = std::chrono::steady_clock::now();
  auto tasks = ListTasks(*g_->mem, g_->layout, g_->init_task, {}, &report);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(tasks) << tasks.error().ToString();
  for (const Status& e : report.errors) ADD_FAILURE() << e.ToString();
  EXPECT_TRUE(report.stopped.ok()) << report.stopped.ToString();
  auto truth = testing::ReadTruthPs(g_->dir);
  std::map<int, const Task*> found;
  for (const Task& t : *tasks) found[t.pid] = &t;
  EXPECT_EQ(found.size(), tasks->size()) << "duplicate pids";

  int missing = 0, extra = 0, test_processes = 0, kthreads = 0;
  std::string odd;  // the pids that differ, for the log
  for (const auto& [pid, p] : truth) {
    auto it = found.find(pid);
    if (it == found.end()) {
      ++missing;
      odd += " -" + std::to_string(pid) + ":" + p.comm;
      // Only transient processes may be gone: pstruth and init's subshells.
      EXPECT_TRUE(p.comm == "pstruth" || p.comm == "init" || p.comm == "sh" || p.comm == "cat")
          << "missing pid " << pid << " " << p.comm;
      continue;
    }
    const Task& t = *it->second;
    // /proc shows workqueue workers as comm + "-" + workqueue: ours must be a prefix.
    EXPECT_EQ(p.comm.substr(0, t.comm.size()), t.comm) << pid;
    EXPECT_EQ(t.ppid, p.ppid) << pid;
    EXPECT_EQ(t.tgid, p.tgid) << pid;
    EXPECT_EQ(std::to_string(t.ids[kUid]), p.uid) << pid;
    EXPECT_EQ(std::to_string(t.ids[kGid]), p.gid) << pid;
    EXPECT_EQ(t.kernel_thread, p.cmdline.empty() && (pid == 2 || p.ppid == 2)) << pid;
    EXPECT_TRUE(t.error.ok()) << pid << ": " << t.error.ToString();
    kthreads += t.kernel_thread;
    if (!IsTestProcess(p.comm)) continue;
    ++test_processes;
    EXPECT_EQ(t.comm, p.comm) << pid;
    // Printed at boot, snapshotted later: a poller running at either moment is not a mismatch.
    if (p.state != "R" && t.state != 'R') {
      EXPECT_EQ(std::string(1, t.state), p.state) << pid << " " << p.comm;
    }
    EXPECT_EQ(std::to_string(t.nr_threads), p.threads) << pid;
    EXPECT_EQ(std::to_string(t.threads.size()), p.threads) << pid;
    ASSERT_TRUE(t.dtb) << pid;
    auto cmdline = ReadCmdline(*g_->mem, g_->layout, t);
    ASSERT_TRUE(cmdline) << cmdline.error().ToString();
    EXPECT_EQ(testing::TruthStyleCmdline(*cmdline), p.cmdline) << pid;
  }
  for (const auto& [pid, t] : found) {
    if (truth.count(pid) != 0) continue;
    ++extra;
    odd += " +" + std::to_string(pid) + ":" + t->comm;
  }
  std::printf(
      "[ %s ] ListTasks: %zu tasks (%d kernel threads) in %.2f ms; truth %zu pids: "
      "%d missing, %d extra (%s); %d marker/ticker/sleep processes checked\n",
      GetParam(), tasks->size(), kthreads, ms, truth.size(), missing, extra, odd.c_str(),
      test_processes);
  EXPECT_GE(test_processes, 4 + 1);
  EXPECT_LE(missing, 10);
  EXPECT_LE(extra, 5);
}

TEST_P(RealTasksTest, WalkIsFast) {
  constexpr int kRuns = 20;
  auto start = std::chrono::steady_clock::now();
  size_t n = 0;
  for (int i = 0; i < kRuns; ++i) n += ListTasks(*g_->mem, g_->layout, g_->init_task)->size();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      kRuns;
  std::printf("[ %s ] ListTasks: %zu tasks, %.2f ms per walk (mean of %d)\n", GetParam(), n / kRuns,
              ms, kRuns);
  EXPECT_LT(ms, 100.0);  // budget: all of `ls proc` in 300 ms
}

INSTANTIATE_TEST_SUITE_P(Guests, RealTasksTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
