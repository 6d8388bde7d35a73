// Linux guests understood from memory alone: raw snapshots without registers (and ELF ones
// with), 4- and 5-level paging, KASLR on, nothing configured. Every answer is checked against
// what the guest printed about itself (tools/guest/README.md).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

// The helpers the guest started; they live until the snapshot (unlike pstruth and init's
// subshells, which print the truth and exit).
bool Persistent(const PsRow& r) {
  return r.comm == "marker" || r.comm == "ticker" || r.comm == "sleep" || r.pid == 1;
}

std::set<int> ListPids(const std::string& proc) {
  std::set<int> pids;
  for (const auto& e : std::filesystem::directory_iterator(proc)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") == std::string::npos) pids.insert(std::stoi(name));
  }
  return pids;
}

std::string StatusField(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":\t", 0) == 0) return line.substr(key.size() + 2);
  }
  return "";
}
struct Param {
  std::string guest;
  std::string file;  // raw.mem (no registers) or core.elf
};

std::ostream& operator<<(std::ostream& os, const Param& p) {
  return os << p.guest << "/" << p.file;
}

class LinuxGuestTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    mount_ = std::make_unique<Mount>(
        std::vector<std::string>{"g=" + GuestDir(GetParam().guest) + "/" + GetParam().file});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    truth_ = TruthPs(GetParam().guest);
    ASSERT_GT(truth_.size(), 300u) << "the test guests run a few hundred processes";
  }
  std::string vm(const std::string& rel) const { return *mount_ / ("g/" + rel); }
  std::unique_ptr<Mount> mount_;
  std::map<int, PsRow> truth_;
};

TEST_P(LinuxGuestTest, InfoSaysLinuxAndTheRightPagingMode) {
  std::string info = ReadFile(vm("info"));
  EXPECT_NE(info.find("os: linux"), std::string::npos) << info;
  std::string uname = TrimNewline(ReadFile(GuestDir(GetParam().guest) + "/truth/uname.txt"));
  EXPECT_NE(info.find("kernel-release: " + uname), std::string::npos) << info;
  bool l5 = GetParam().guest == "l5";
  EXPECT_NE(info.find(l5 ? "page-mode: ia32e-5level" : "page-mode: ia32e-4level"),
            std::string::npos)
      << info;
}

TEST_P(LinuxGuestTest, KmemWorksEvenWithoutRegisters) {
  uint64_t banner = TruthSymbol(GetParam().guest, "linux_banner");
  std::string truth = ReadFile(GuestDir(GetParam().guest) + "/truth/banner.txt");
  uint64_t bits = GetParam().guest == "l5" ? 57 : 48;
  EXPECT_EQ(PreadAt(vm("kmem"), banner & ((1ull << bits) - 1), truth.size()), truth);
  EXPECT_EQ(ReadFile(vm("symbols/kernel/linux_banner")).substr(0, truth.size()), truth);
}

TEST_P(LinuxGuestTest, ProcessesAndCommsAreTheGuestsOwn) {
  std::set<int> pids = ListPids(vm("proc"));
  EXPECT_GT(pids.size(), 300u);
  int kernel_threads = 0;
  for (const auto& [pid, row] : truth_) {
    bool kthread = row.cmdline.empty() && row.pid != 1;
    if (!Persistent(row) && !kthread) continue;
    if (kthread && row.comm.rfind("kworker/", 0) == 0) continue;  // workers come and go
    ASSERT_TRUE(pids.count(pid)) << "missing pid " << pid << " " << row.comm;
    std::string comm = TrimNewline(ReadFile(vm("proc/" + std::to_string(pid) + "/comm")));
    EXPECT_EQ(comm, row.comm) << pid;
    kernel_threads += kthread;
  }
  EXPECT_GT(kernel_threads, 20);
  // Nothing we list is invented: every pid is in the truth, or a process the guest started
  // after printing it (its idle `sleep 3600`), or a kernel worker.
  for (int pid : pids) {
    if (truth_.count(pid)) continue;
    std::string comm = TrimNewline(ReadFile(vm("proc/" + std::to_string(pid) + "/comm")));
    EXPECT_TRUE(comm == "sleep" || comm.rfind("kworker/", 0) == 0) << pid << " " << comm;
  }
}

TEST_P(LinuxGuestTest, StatusAndCmdlineMatchForUserProcesses) {
  int checked = 0;
  for (const auto& [pid, row] : truth_) {
    if (!Persistent(row)) continue;
    std::string dir = "proc/" + std::to_string(pid) + "/";
    std::string status = ReadFile(vm(dir + "status"));
    EXPECT_EQ(StatusField(status, "Name"), row.comm) << pid;
    // The truth was printed at boot, the snapshot taken later: a process that was running then
    // (a marker still planting) may sleep now; sleepers stay asleep.
    std::string state = StatusField(status, "State").substr(0, 1);
    if (row.state != "R" && state != "R") {
      EXPECT_EQ(state, row.state) << pid;
    }
    EXPECT_EQ(StatusField(status, "PPid"), std::to_string(row.ppid)) << pid;
    EXPECT_EQ(StatusField(status, "Tgid"), std::to_string(row.tgid)) << pid;
    EXPECT_EQ(StatusField(status, "Uid").substr(0, row.uid.size() + 1), row.uid + "\t") << pid;
    std::string cmdline = ReadFile(vm(dir + "cmdline"));
    while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    EXPECT_EQ(cmdline, row.cmdline) << pid;
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

// Every process still there (same comm) has the guest's four uids and gids, thread count and
// thread ids (task/), one of them (tools/guest/threads.c) 4 threads with non-root ids.
TEST_P(LinuxGuestTest, CredentialsAndThreadsAreTheGuestsOwn) {
  auto tasks = TruthTasks(GetParam().guest);
  if (tasks.empty()) {
    GTEST_SKIP() << "no truth/tasks.tsv: the guest runs an image from before the threads helper "
                    "(re-prepare the guests)";
  }
  int checked = 0, non_root = 0, multi = 0;
  for (const auto& [pid, t] : tasks) {
    std::string dir = "proc/" + std::to_string(pid);
    auto row = truth_.find(pid);
    if (row == truth_.end() || !std::filesystem::exists(vm(dir + "/comm")) ||
        TrimNewline(ReadFile(vm(dir + "/comm"))) != row->second.comm) {
      continue;  // exited since the truth was printed (pstruth, init's subshells)
    }
    ExpectTaskIs(vm(dir), pid, t);
    ++checked;
    non_root += t.uid != "0 0 0 0";
    multi += t.tids.size() > 1;
  }
  EXPECT_GT(checked, 300);
  EXPECT_GE(non_root, 1) << "the threads helper's ids";
  EXPECT_GE(multi, 1) << "the threads helper's threads";
}

TEST_P(LinuxGuestTest, MapsEqualTheGuestsLineForLine) {
  int checked = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(GuestDir(GetParam().guest) + "/truth/maps")) {
    std::string pid = e.path().stem();
    const std::string maps = ReadFile(e.path());
    EXPECT_EQ(ReadFile(vm("proc/" + pid + "/maps")), maps) << "pid " << pid;
    EXPECT_EQ(TrimNewline(ReadFile(vm("proc/" + pid + "/exe"))), ExeFromTruthMaps(maps))
        << "pid " << pid;
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

TEST_P(LinuxGuestTest, MarkersReadBackFromProcessMemoryAndVmem) {
  std::ifstream in(GuestDir(GetParam().guest) + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, checked = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    uint64_t va = std::stoull(hex, nullptr, 16);
    std::string dir = "proc/" + std::to_string(pid) + "/";
    EXPECT_EQ(PreadAt(vm(dir + "mem"), va, text.size()), text) << pid << " " << kind;
    // The same bytes through the one file of the VMA that holds them.
    bool found = false;
    for (const auto& v : std::filesystem::directory_iterator(vm(dir + "vmem"))) {
      std::string name = v.path().filename();
      uint64_t start = std::stoull(name.substr(0, name.find('-')), nullptr, 16);
      uint64_t end = std::stoull(name.substr(name.find('-') + 1), nullptr, 16);
      if (va < start || va >= end) continue;
      found = true;
      EXPECT_EQ(std::filesystem::file_size(v.path()), end - start);
      if (va + text.size() <= end) {
        EXPECT_EQ(PreadAt(v.path(), va - start, text.size()), text) << pid << " " << kind;
      }
    }
    EXPECT_TRUE(found) << "no vmem file holds " << hex;
    ++checked;
  }
  EXPECT_EQ(checked, 12) << "3 marker processes x 4 markers";
}

TEST_P(LinuxGuestTest, EveryKallsymsLineOfTheGuestIsListed) {
  std::set<std::string> ours;
  {
    std::istringstream in(ReadFile(vm("symbols/kallsyms")));
    std::string line;
    while (std::getline(in, line)) ours.insert(line);
  }
  std::ifstream truth(GuestDir(GetParam().guest) + "/truth/kallsyms.txt");
  std::string line;
  int total = 0, missing = 0;
  while (std::getline(truth, line)) {
    ++total;
    if (!ours.count(line)) {
      if (++missing <= 5) ADD_FAILURE() << "missing: " << line;
    }
  }
  EXPECT_GT(total, 50000);
  EXPECT_EQ(missing, 0) << "of " << total;
}

// truth/modules.txt, or the modules section of truth.log for guests whose truth/ predates it;
// empty for guests that loaded no modules.
std::string TruthModules(const std::string& guest) {
  std::string dir = GuestDir(guest);
  if (std::filesystem::exists(dir + "/truth/modules.txt")) {
    return ReadFile(dir + "/truth/modules.txt");
  }
  std::string log = ReadFile(dir + "/truth.log");
  size_t begin = log.find("==VMEMFS-BEGIN modules==\n"), end = log.find("==VMEMFS-END modules==");
  if (begin == std::string::npos || end == std::string::npos) return "";
  begin += std::string("==VMEMFS-BEGIN modules==\n").size();
  return log.substr(begin, end - begin);
}

TEST_P(LinuxGuestTest, ProcModulesIsTheGuestsOwn) {
  std::string truth = TruthModules(GetParam().guest);
  if (truth.empty()) GTEST_SKIP() << "the guest loaded no modules (image older than modules)";
  EXPECT_EQ(ReadFile(vm("proc/modules")), truth);
}

// Module symbols' files hold the kernel memory at the symbol, as kmem shows it.
TEST_P(LinuxGuestTest, ModuleSymbolFilesReadTheirMemory) {
  if (TruthModules(GetParam().guest).empty()) GTEST_SKIP() << "the guest loaded no modules";
  const int bits = GetParam().guest == "l5" ? 57 : 48;
  EXPECT_EQ(ExpectModuleSymbolFilesReadKmem(vm(""), GetParam().guest, bits, 20), 20);
}

INSTANTIATE_TEST_SUITE_P(Guests, LinuxGuestTest,
                         ::testing::Values(Param{"l4", "raw.mem"}, Param{"l5", "raw.mem"},
                                           Param{"l4", "core.elf"}, Param{"l5", "core.elf"}),
                         [](const auto& info) {
                           return info.param.guest + "_" +
                                  (info.param.file == "raw.mem" ? "raw" : "elf");
                         });

}  // namespace
}  // namespace vmemfs::testing
