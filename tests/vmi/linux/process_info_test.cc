#include "vmi/linux/process_info.h"

#include <gtest/gtest.h>

#include "tasks_test_guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

using namespace std::string_literals;
using testing::SyntheticKernel;

// An mm at PA 0x20000 whose page tables are the synthetic kernel's (user VA x == PA x).
class SyntheticProcessTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kMmPa = 0x20000;
  static constexpr uint64_t kArgs = 0x30000;  // user VA (== PA)

  SyntheticProcessTest() {
    layout_.mm_arg_start = 0x10;
    layout_.mm_arg_end = 0x18;
    layout_.mm_env_start = 0x20;
    layout_.mm_env_end = 0x28;
    layout_.mm_start_brk = 0x30;
    layout_.mm_brk = 0x38;
    layout_.mm_start_stack = 0x40;
    layout_.mm_exe_file = 0x48;
    task_.pid = 42;
    task_.mm = SyntheticKernel::Kva(kMmPa);
    task_.dtb = SyntheticKernel::kPml4;
  }
  void Args(const std::string& bytes, uint64_t at = kArgs) {
    k_.Put(at, bytes.data(), bytes.size());
    k_.Put64(kMmPa + layout_.mm_arg_start, at);
    k_.Put64(kMmPa + layout_.mm_arg_end, at + bytes.size());
  }
  std::string Cmdline(size_t max = kMaxArgBytes) {
    auto c = ReadCmdline(k_.mem(), layout_, task_, max);
    EXPECT_TRUE(c) << c.error().ToString();
    return c.value_or("<error>");
  }

  SyntheticKernel k_;
  TaskLayout layout_;
  Task task_;
};

TEST_F(SyntheticProcessTest, CmdlineIsTheArgumentBytes) {
  Args("sleep\0001000001\0"s);
  EXPECT_EQ(Cmdline(), "sleep\0001000001\0"s);
}

TEST_F(SyntheticProcessTest, RewrittenArgumentsGiveTheFirstString) {
  Args("my title\0garbage-without-nul"s);
  EXPECT_EQ(Cmdline(), "my title");
}

TEST_F(SyntheticProcessTest, CmdlineIsBoundedAndStopsAtUnmappedPages) {
  std::string big(300 * 1024, 'a');
  big.back() = '\0';
  Args(big);
  EXPECT_EQ(Cmdline(100).size(), 100u);  // the real last byte is NUL: no proctitle rule
  EXPECT_EQ(Cmdline().size(), kMaxArgBytes);
  // Arguments that run off the end of RAM (and so of the user mapping): what was readable.
  k_.Put64(kMmPa + layout_.mm_arg_start, SyntheticKernel::kRam - 10);
  k_.Put64(kMmPa + layout_.mm_arg_end, SyntheticKernel::kRam + 5000);
  EXPECT_EQ(Cmdline().size(), 10u);
}

TEST_F(SyntheticProcessTest, ImpossibleRangesAreEmpty) {
  k_.Put64(kMmPa + layout_.mm_arg_start, 0x5000);
  k_.Put64(kMmPa + layout_.mm_arg_end, 0x4000);
  EXPECT_EQ(Cmdline(), "");
  k_.Put64(kMmPa + layout_.mm_arg_start, ~0ull - 3);
  k_.Put64(kMmPa + layout_.mm_arg_end, ~0ull);
  EXPECT_EQ(Cmdline(), "");  // non-canonical: unreadable
}

TEST_F(SyntheticProcessTest, EnvironAndKernelThreads) {
  k_.Put(0x31000, "A=1\0B=2\0", 8);
  k_.Put64(kMmPa + layout_.mm_env_start, 0x31000);
  k_.Put64(kMmPa + layout_.mm_env_end, 0x31008);
  EXPECT_EQ(*ReadEnviron(k_.mem(), layout_, task_), "A=1\0B=2\0"s);
  task_.mm = 0;
  EXPECT_EQ(*ReadCmdline(k_.mem(), layout_, task_), "");
  EXPECT_EQ(ReadMmInfo(k_.mem(), layout_, task_).error().code(), ErrorCode::kNotFound);
}

TEST_F(SyntheticProcessTest, MmWithoutPageTablesIsAnError) {
  Args("x\0"s);
  task_.dtb.reset();
  EXPECT_FALSE(ReadCmdline(k_.mem(), layout_, task_));
  task_.mm = 0xdead000000000000;
  EXPECT_FALSE(ReadMmInfo(k_.mem(), layout_, task_));
}

TEST(StatusTextTest, ProcFormat) {
  Task t;
  t.comm = "a\\b\nc";
  t.name = t.comm;
  t.state = 'S';
  t.pid = 12;
  t.tgid = 10;
  t.ppid = 1;
  for (int i = 0; i < 8; ++i) t.ids[i] = 100 + i;  // uid gid suid sgid euid egid fsuid fsgid
  t.nr_threads = 3;
  EXPECT_EQ(StatusText(t),
            "Name:\ta\\\\b\\nc\n"
            "State:\tS (sleeping)\n"
            "Tgid:\t10\n"
            "Pid:\t12\n"
            "PPid:\t1\n"
            "Uid:\t100\t104\t102\t106\n"
            "Gid:\t101\t105\t103\t107\n"
            "Threads:\t3\n");
}

// --- Real guests: the marker processes' cmdline and status against the truth. ---

class RealProcessTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::string why;
    g_ = testing::OpenRealGuest(GetParam(), &why);
    if (g_ == nullptr) GTEST_SKIP() << why;
  }
  testing::RealGuest* g_ = nullptr;
};

TEST_P(RealProcessTest, MarkerStatusAndMemoryRanges) {
  auto tasks = ListTasks(*g_->mem, g_->layout, g_->init_task);
  ASSERT_TRUE(tasks);
  auto truth = testing::ReadTruthPs(g_->dir);
  int checked = 0;
  for (const Task& t : *tasks) {
    auto p = truth.find(t.pid);
    if (p == truth.end() || p->second.comm != "marker") continue;
    ++checked;
    // The truth was printed at boot, the snapshot taken later: a marker polling its heap may
    // be running at either moment (it sleeps 100 ms between polls).
    char state = p->second.state == "R" || t.state == 'R' ? t.state : p->second.state[0];
    std::string expected = "Name:\tmarker\nState:\t" + std::string(TaskStateName(state)) +
                           "\nTgid:\t" + std::to_string(t.pid) + "\nPid:\t" +
                           std::to_string(t.pid) + "\nPPid:\t" + std::to_string(p->second.ppid) +
                           "\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\n";
    EXPECT_EQ(StatusText(t), expected);
    auto mm = ReadMmInfo(*g_->mem, g_->layout, t);
    ASSERT_TRUE(mm) << mm.error().ToString();
    EXPECT_LT(mm->arg_start, mm->arg_end);
    EXPECT_LE(mm->arg_end, mm->env_start);
    EXPECT_LT(mm->env_start, mm->env_end);
    EXPECT_LE(mm->start_brk, mm->brk);
    EXPECT_NE(mm->exe_file, 0u);
    auto env = ReadEnviron(*g_->mem, g_->layout, t);
    ASSERT_TRUE(env);
    EXPECT_EQ(env->size(), mm->env_end - mm->env_start);
    EXPECT_EQ(env->back(), '\0');
  }
  EXPECT_EQ(checked, 3);  // alpha, bravo, charlie
}

INSTANTIATE_TEST_SUITE_P(Guests, RealProcessTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
