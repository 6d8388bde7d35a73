// LinuxOs as the filesystem sees it (OperatingSystem, Describe), on copies of the real test
// guests' snapshots with chosen damage: a walk that stops early must say where and why.
#include "vmi/linux/linux_os.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/hex.h"
#include "tasks_test_guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

// A copy of guest `name`'s raw snapshot, removed at destruction.
class SnapshotCopy {
 public:
  explicit SnapshotCopy(const std::string& name)
      : from_(testing::kGuestRoot + "/" + name + "/raw.mem"),
        path_(std::filesystem::temp_directory_path() / ("vmemfs-linux-os-" + name + "-" +
                                                        std::to_string(getpid()) + ".mem")) {}
  ~SnapshotCopy() { std::filesystem::remove(path_); }
  bool Make() {
    if (!std::filesystem::exists(from_)) return false;
    std::filesystem::copy_file(from_, path_, std::filesystem::copy_options::overwrite_existing);
    return true;
  }
  // Overwrites 8 bytes at physical address `pa` (a raw file's offset).
  void Put64(uint64_t pa, uint64_t value) {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(pa));
    f.write(reinterpret_cast<const char*>(&value), 8);
  }
  void Put32(uint64_t pa, uint32_t value) {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(pa));
    f.write(reinterpret_cast<const char*>(&value), 4);
  }
  const std::string& from() const { return from_; }
  std::string path() const { return path_.string(); }

 private:
  std::string from_;
  std::filesystem::path path_;
};

std::string FactValue(OperatingSystem& os, const std::string& key) {
  for (const Fact& f : os.Describe()) {
    if (f.key == key) return f.value;
  }
  return "";
}

class DamagedTaskListTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!copy_.Make()) GTEST_SKIP() << "no test guest snapshot " << copy_.from();
    std::string why;
    original_ = testing::OpenRealKernel(copy_.from(), &why);
    ASSERT_TRUE(original_) << why;
    layout_ = *original_->os().task_layout();
    init_task_ = original_->os().Symbols().Lookup("init_task")->address;
    auto tasks = ListTasks(*original_->mem, layout_, init_task_);
    ASSERT_TRUE(tasks);
    tasks_ = *std::move(tasks);
    ASSERT_GT(tasks_.size(), 200u);
  }
  uint64_t Pa(uint64_t va) { return *original_->mem->Translate(va); }

  SnapshotCopy copy_{GetParam()};
  std::unique_ptr<testing::RealKernel> original_;
  TaskLayout layout_;
  uint64_t init_task_ = 0;
  std::vector<Task> tasks_;  // the processes in list order
};

// LIST_POISON1 in the 100th process's tasks.next: 100 processes, and info says where.
TEST_P(DamagedTaskListTest, PoisonedLinkIsReportedWithTheTask) {
  const Task& hundredth = tasks_[99];
  copy_.Put64(Pa(hundredth.address + layout_.tasks), 0xdead000000000100ull);
  std::string why;
  auto damaged = testing::OpenRealKernel(copy_.path(), &why);
  ASSERT_TRUE(damaged) << why;
  EXPECT_EQ(damaged->os().ProcessIds()->size(), 100u);
  std::string processes = FactValue(damaged->os(), "processes");
  EXPECT_EQ(processes.rfind("100 (stopped at task " + Hex(hundredth.address) + ": ", 0), 0u)
      << processes;
  EXPECT_NE(processes.find("unreadable"), std::string::npos) << processes;
  // The undamaged snapshot says nothing of the kind.
  EXPECT_EQ(FactValue(original_->os(), "processes"), std::to_string(tasks_.size()));
}

// A cycle in the middle: the 150th process points back at the 50th (both links agree).
TEST_P(DamagedTaskListTest, CycleIsReported) {
  uint64_t node50 = tasks_[49].address + layout_.tasks;
  uint64_t node150 = tasks_[149].address + layout_.tasks;
  copy_.Put64(Pa(node150), node50);
  copy_.Put64(Pa(node50 + 8), node150);
  std::string why;
  auto damaged = testing::OpenRealKernel(copy_.path(), &why);
  ASSERT_TRUE(damaged) << why;
  std::string processes = FactValue(damaged->os(), "processes");
  EXPECT_NE(processes.find("(stopped at task 0x"), std::string::npos) << processes;
  EXPECT_LT(damaged->os().ProcessIds()->size(), tasks_.size());
}

// Garbage pids in every task: nothing can be listed, and info says why instead of silence.
TEST_P(DamagedTaskListTest, ImpossiblePidsAreReported) {
  for (const Task& t : tasks_) {
    for (const ThreadRef& thread : t.threads) {
      copy_.Put32(Pa(thread.address + layout_.pid.offset), 0xfffffff0u);
    }
  }
  std::string why;
  auto damaged = testing::OpenRealKernel(copy_.path(), &why);
  ASSERT_TRUE(damaged) << why;
  EXPECT_TRUE(damaged->os().ProcessIds()->empty());
  std::string processes = FactValue(damaged->os(), "processes");
  EXPECT_EQ(processes.rfind("0 (", 0), 0u) << processes;
  EXPECT_NE(processes.find("tasks with impossible ids left out"), std::string::npos)
      << processes;
}

INSTANTIATE_TEST_SUITE_P(Guests, DamagedTaskListTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
