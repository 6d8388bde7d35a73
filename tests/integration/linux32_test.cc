// 32-bit Linux guests (Debian's i386 kernels: 686-pae with PAE paging, 686 with 2-level
// paging) understood from memory alone, raw snapshots without registers and QEMU's ELF dumps
// with them. Every answer is checked against what the guest printed about itself
// (tools/guest/README.md). Debian's i386 kernels have neither BTF nor KALLSYMS_ALL: the task
// list's, VMAs', files', modules', credentials' and threads' offsets are inferred from memory
// (README.md, "32-bit guests").
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

struct Param {
  std::string guest;  // pae or legacy32 (tools/guest/guest.py GUESTS)
  std::string file;   // raw.mem (no registers), core.elf, or "lime": written here (SetUp)
};

std::ostream& operator<<(std::ostream& os, const Param& p) {
  return os << p.guest << "/" << p.file;
}

// [start, end] of each top-level /proc/iomem line named `name` ("System RAM"), as the guest
// printed them.
std::vector<std::pair<uint64_t, uint64_t>> TruthIomemAll(const std::string& guest,
                                                         const std::string& name) {
  std::istringstream in(ReadFile(GuestDir(guest) + "/truth/iomem.txt"));
  std::vector<std::pair<uint64_t, uint64_t>> found;
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(" : ");
    if (colon == std::string::npos || line.substr(colon + 3) != name) continue;
    size_t first = line.find_first_not_of(' ');
    size_t dash = line.find('-', first);
    found.push_back({std::stoull(line.substr(first, dash - first), nullptr, 16),
                     std::stoull(line.substr(dash + 1, colon - dash - 1), nullptr, 16)});
  }
  return found;
}

// The first of them ("Kernel code" is there once).
std::pair<uint64_t, uint64_t> TruthIomem(const std::string& guest, const std::string& name) {
  auto all = TruthIomemAll(guest, name);
  if (all.empty()) {
    ADD_FAILURE() << "no " << name << " in iomem.txt of " << guest;
    return {0, 0};
  }
  return all.front();
}

// What LiME dumps: the guest's top-level "System RAM" ranges, [start, end).
std::vector<std::pair<uint64_t, uint64_t>> LimeRanges(const std::string& guest) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [start, last] : TruthIomemAll(guest, "System RAM")) {
    if (last >= start) ranges.push_back({start, last + 1});
  }
  return ranges;
}

class Linux32GuestTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    std::string source = GuestDir(GetParam().guest) + "/" + GetParam().file;
    if (lime()) {
      // The guest's RAM as LiME would have dumped it, from the raw snapshot's bytes.
      ASSERT_FALSE(LimeRanges(GetParam().guest).empty());
      source = tmp_.path() + "/guest.lime";
      ASSERT_TRUE(WriteLime(source, raw(), LimeRanges(GetParam().guest)));
    }
    mount_ = std::make_unique<Mount>(std::vector<std::string>{"g=" + source});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
  }
  bool lime() const { return GetParam().file == "lime"; }
  std::string vm(const std::string& rel) const { return *mount_ / ("g/" + rel); }
  std::string raw() const { return GuestDir(GetParam().guest) + "/raw.mem"; }
  TempDir tmp_;
  std::unique_ptr<Mount> mount_;
};

TEST_P(Linux32GuestTest, InfoSays32BitLinuxInTheRightPagingMode) {
  std::string info = ReadFile(vm("info"));
  EXPECT_NE(info.find("os: linux"), std::string::npos) << info;
  std::string uname = TrimNewline(ReadFile(GuestDir(GetParam().guest) + "/truth/uname.txt"));
  EXPECT_EQ(InfoValue(info, "kernel-release"), uname) << info;
  EXPECT_EQ(InfoValue(info, "page-mode"), GetParam().guest) << info;
  EXPECT_EQ(InfoValue(info, "pointer-size"), "4") << info;
  EXPECT_EQ(InfoValue(info, "kmem-size"), "0x100000000") << info;
}

// RAM, that is: QEMU's ELF dump of a 32-bit machine also holds the BIOS ROM below 4 GiB, so
// its pmem is 4 GiB long (the hole between is a hole); a LiME file holds System RAM only.
TEST_P(Linux32GuestTest, PmemEqualsTheRawSnapshot) {
  const uint64_t size = std::filesystem::file_size(raw());
  if (lime()) {
    const auto ranges = LimeRanges(GetParam().guest);
    ASSERT_EQ(std::filesystem::file_size(vm("pmem")), ranges.back().second);
    for (const auto& [start, end] : ranges) {
      for (uint64_t off = start; off < end; off += 4 << 20) {
        size_t n = std::min<uint64_t>(4 << 20, end - off);
        ASSERT_TRUE(PreadAt(vm("pmem"), off, n) == PreadAt(raw(), off, n)) << "at " << off;
      }
    }
    EXPECT_EQ(InfoValue(ReadFile(vm("info")), "format"), "lime");
    return;
  }
  if (GetParam().file == "raw.mem") {
    ASSERT_EQ(std::filesystem::file_size(vm("pmem")), size);
  } else {
    ASSERT_GE(std::filesystem::file_size(vm("pmem")), size);
  }
  constexpr size_t kChunk = 4 << 20;
  for (uint64_t off = 0; off < size; off += kChunk) {
    size_t n = std::min<uint64_t>(kChunk, size - off);
    ASSERT_TRUE(PreadAt(vm("pmem"), off, n) == PreadAt(raw(), off, n)) << "at " << off;
  }
}

// kmem's offset is the 32-bit virtual address: the kernel's text at _text (kallsyms) holds
// what RAM holds at the start of "Kernel code" (iomem), and the banner /proc/version printed
// is in kmem where the image's linear map puts its copy in RAM.
TEST_P(Linux32GuestTest, KmemAtKernelTextAndBanner) {
  const std::string& g = GetParam().guest;
  uint64_t text = TruthSymbol(g, "_text");
  auto [code, code_end] = TruthIomem(g, "Kernel code");
  ASSERT_LT(code, code_end);
  EXPECT_TRUE(PreadAt(vm("kmem"), text, 4096) == PreadAt(raw(), code, 4096));

  std::string banner = ReadFile(GuestDir(g) + "/truth/banner.txt");
  auto [rodata, rodata_end] = TruthIomem(g, "Kernel rodata");
  std::string image = PreadAt(raw(), rodata, rodata_end + 1 - rodata);
  size_t at = image.find(banner.substr(0, banner.size() - 1));  // linux_banner ends "\n\0"
  ASSERT_NE(at, std::string::npos) << "banner not in the kernel's rodata";
  uint64_t va = text + (rodata - code) + at;
  EXPECT_EQ(PreadAt(vm("kmem"), va, banner.size()), banner);
}

// The core kernel's lines of /proc/kallsyms, each of them (the modules' lines: below).
TEST_P(Linux32GuestTest, EveryKernelKallsymsLineOfTheGuestIsListed) {
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
    if (line.find("\t[") != std::string::npos) continue;
    ++total;
    if (!ours.count(line) && ++missing <= 5) ADD_FAILURE() << "missing: " << line;
  }
  EXPECT_GT(total, 40000);
  EXPECT_EQ(missing, 0) << "of " << total;
}

// A symbol's file holds the kernel memory at its address, as kmem shows it.
TEST_P(Linux32GuestTest, KernelSymbolFilesReadTheirMemory) {
  for (const char* name : {"_stext", "vfs_read", "schedule", "do_sys_open"}) {
    uint64_t va = TruthSymbol(GetParam().guest, name);
    std::string bytes = ReadFile(vm(std::string("symbols/kernel/") + name));
    ASSERT_GE(bytes.size(), 16u) << name;
    EXPECT_EQ(bytes.substr(0, 16), PreadAt(vm("kmem"), va, 16)) << name;
  }
}

// Helpers the guest started and that live until the snapshot.
bool Persistent(const PsRow& r) {
  return r.comm == "marker" || r.comm == "ticker" || r.comm == "sleep" || r.pid == 1;
}

std::string StatusField(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":\t", 0) == 0) return line.substr(key.size() + 2);
  }
  return "";
}

// The process set from the task list with inferred offsets: every process the guest listed
// that still lives is there with its comm (a kernel thread's full name, from its struct
// kthread, as /proc shows it), its parent and its command line.
TEST_P(Linux32GuestTest, ProcessesCommsParentsAndCmdlinesAreTheGuestsOwn) {
  auto truth = TruthPs(GetParam().guest);
  ASSERT_GT(truth.size(), 300u);
  std::set<int> pids;
  for (const auto& e : std::filesystem::directory_iterator(vm("proc"))) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") == std::string::npos) pids.insert(std::stoi(name));
  }
  int kernel_threads = 0, user = 0;
  for (const auto& [pid, row] : truth) {
    bool kthread = row.cmdline.empty() && pid != 1;
    if (!Persistent(row) && !kthread) continue;
    if (kthread && row.comm.rfind("kworker/", 0) == 0) continue;  // workers come and go
    ASSERT_TRUE(pids.count(pid)) << "missing pid " << pid << " " << row.comm;
    std::string dir = "proc/" + std::to_string(pid) + "/";
    std::string comm = TrimNewline(ReadFile(vm(dir + "comm")));
    EXPECT_EQ(comm, row.comm) << pid;  // a kernel thread's full name, not its 15-byte comm
    std::string status = ReadFile(vm(dir + "status"));
    EXPECT_EQ(StatusField(status, "PPid"), std::to_string(row.ppid)) << pid;
    // Sleepers stay asleep between the truth and the snapshot.
    std::string state = StatusField(status, "State").substr(0, 1);
    if (row.state != "R" && state != "R") {
      EXPECT_EQ(state, row.state) << pid;
    }
    if (!kthread) {
      std::string cmdline = ReadFile(vm(dir + "cmdline"));
      while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      EXPECT_EQ(cmdline, row.cmdline) << pid;
    }
    kernel_threads += kthread;
    user += !kthread;
  }
  EXPECT_GT(kernel_threads, 20);
  EXPECT_GT(user, 300);
  // Nothing invented: every pid is in the truth, or an idle sleep or kernel worker since.
  for (int pid : pids) {
    if (truth.count(pid)) continue;
    std::string comm = TrimNewline(ReadFile(vm("proc/" + std::to_string(pid) + "/comm")));
    EXPECT_TRUE(comm == "sleep" || comm.rfind("kworker/", 0) == 0) << pid << " " << comm;
  }
}

// Credentials and threads from inferred offsets: for every process the guest listed that is
// still there (same comm), the real ids and thread count of ps.tsv, and, from tasks.tsv, all
// four uids and gids and the thread ids: task/ lists exactly them, each thread with its own
// Pid, the group's Tgid and ids. The guests run one process with 4 threads and distinct
// non-root ids (tools/guest/threads.c), so neither can pass as zeros or the leader alone.
TEST_P(Linux32GuestTest, CredentialsAndThreadsAreTheGuestsOwn) {
  auto ps = TruthPs(GetParam().guest);
  auto tasks = TruthTasks(GetParam().guest);
  int checked = 0, non_root = 0, multi = 0;
  for (const auto& [pid, row] : ps) {
    std::string dir = "proc/" + std::to_string(pid) + "/";
    if (!std::filesystem::exists(vm(dir + "comm")) ||
        TrimNewline(ReadFile(vm(dir + "comm"))) != row.comm) {
      continue;  // exited since the truth was printed (pstruth, init's subshells)
    }
    std::string status = ReadFile(vm(dir + "status"));
    EXPECT_EQ(StatusField(status, "Uid").substr(0, row.uid.size() + 1), row.uid + "\t") << pid;
    EXPECT_EQ(StatusField(status, "Gid").substr(0, row.gid.size() + 1), row.gid + "\t") << pid;
    EXPECT_EQ(StatusField(status, "Threads"), row.threads) << pid;
    ++checked;
    auto task = tasks.find(pid);
    if (task == tasks.end()) continue;
    const TruthTask& t = task->second;
    ExpectTaskIs(vm(dir), pid, t);
    non_root += t.uid != "0 0 0 0";
    multi += t.tids.size() > 1;
  }
  EXPECT_GT(checked, 300);
  if (tasks.empty()) {
    GTEST_SKIP() << "no truth/tasks.tsv: the guest runs an image from before the threads helper "
                    "(re-prepare the guests); only real ids and thread counts were checked";
  }
  EXPECT_GE(non_root, 1) << "the threads helper's ids";
  EXPECT_GE(multi, 1) << "the threads helper's threads";
}

// The markers the guest's processes planted (heap, a page-crossing mmap, .data, stack) read
// back through proc/<pid>/mem, i.e. through each process's own page tables (mm->pgd).
TEST_P(Linux32GuestTest, MarkersReadBackFromProcessMemory) {
  std::ifstream in(GuestDir(GetParam().guest) + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, checked = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    uint64_t va = std::stoull(hex, nullptr, 16);
    EXPECT_EQ(PreadAt(vm("proc/" + std::to_string(pid) + "/mem"), va, text.size()), text)
        << pid << " " << kind;
    ++checked;
  }
  EXPECT_EQ(checked, 12) << "3 marker processes x 4 markers";
}

// maps equals what the guest printed line for line (VMA, file, dentry, inode and mount
// offsets inferred), exe names the helper, vmem/ holds one file per VMA, exactly the ranges of
// the guest's maps, and the markers read back through the file of the VMA that holds them.
TEST_P(Linux32GuestTest, MapsExeAndVmemAreTheGuestsOwn) {
  int checked = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(GuestDir(GetParam().guest) + "/truth/maps")) {
    std::string pid = e.path().stem();
    std::set<std::string> truth, ours;
    std::istringstream maps(ReadFile(e.path()));
    std::string line;
    while (std::getline(maps, line)) {
      std::string range = line.substr(0, line.find(' '));
      size_t dash = range.find('-');
      // vmem/ names are lowercase hex without leading zeros.
      auto hex = [](const std::string& h) {
        std::ostringstream o;
        o << std::hex << std::stoull(h, nullptr, 16);
        return o.str();
      };
      truth.insert(hex(range.substr(0, dash)) + "-" + hex(range.substr(dash + 1)));
    }
    for (const auto& v : std::filesystem::directory_iterator(vm("proc/" + pid + "/vmem"))) {
      ours.insert(v.path().filename());
    }
    EXPECT_EQ(ours, truth) << "pid " << pid;
    EXPECT_EQ(ReadFile(vm("proc/" + pid + "/maps")), ReadFile(e.path())) << "pid " << pid;
    EXPECT_EQ(TrimNewline(ReadFile(vm("proc/" + pid + "/exe"))),
              ExeFromTruthMaps(ReadFile(e.path())))
        << "pid " << pid;
    ++checked;
  }
  EXPECT_GE(checked, 4);
  std::ifstream in(GuestDir(GetParam().guest) + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, markers = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    uint64_t va = std::stoull(hex, nullptr, 16);
    bool found = false;
    for (const auto& v : std::filesystem::directory_iterator(
             vm("proc/" + std::to_string(pid) + "/vmem"))) {
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
    ++markers;
  }
  EXPECT_EQ(markers, 12);
}

TEST_P(Linux32GuestTest, InfoSaysHowTheTaskListWasFound) {
  std::string info = ReadFile(vm("info"));
  EXPECT_EQ(InfoValue(info, "types"), "inferred") << info;
  EXPECT_NE(InfoValue(info, "vma-offsets"), "") << info;
  EXPECT_EQ(info.find("vmas: unavailable"), std::string::npos) << info;
  EXPECT_NE(InfoValue(info, "init-task"), "") << info;
  for (const char* key : {"cred-offsets", "thread-offsets"}) {
    EXPECT_NE(InfoValue(info, key), "") << info;
    EXPECT_NE(InfoValue(info, key), "?") << info;
  }
  EXPECT_EQ(InfoValue(info, "processes").find_first_not_of("0123456789"), std::string::npos)
      << "no walk errors: " << info;
}

// /proc/modules as the guest printed it (its modules: tools/guest/build-guest.sh), from the
// inferred `modules` head and struct module offsets.
TEST_P(Linux32GuestTest, ProcModulesIsTheGuestsOwn) {
  std::string truth = ReadFile(GuestDir(GetParam().guest) + "/truth/modules.txt");
  ASSERT_NE(truth, "") << "the guest loaded no modules";
  EXPECT_EQ(ReadFile(vm("proc/modules")), truth);
}

// The modules' lines of /proc/kallsyms: every one of the guest's, and no other.
TEST_P(Linux32GuestTest, ModuleKallsymsLinesAreTheGuestsOwn) {
  auto module_lines = [](const std::string& text) {
    std::multiset<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("\t[") != std::string::npos) lines.insert(line);
    }
    return lines;
  };
  auto truth = module_lines(ReadFile(GuestDir(GetParam().guest) + "/truth/kallsyms.txt"));
  auto ours = module_lines(ReadFile(vm("symbols/kallsyms")));
  EXPECT_GT(truth.size(), 50u);
  EXPECT_TRUE(ours == truth) << ours.size() << " lines against the guest's " << truth.size();
}

// Module symbols' files hold the kernel memory at the symbol, as kmem shows it.
TEST_P(Linux32GuestTest, ModuleSymbolFilesReadTheirMemory) {
  EXPECT_EQ(ExpectModuleSymbolFilesReadKmem(vm(""), GetParam().guest, 32, 20), 20);
}

TEST_P(Linux32GuestTest, InfoSaysHowTheModulesWereFound) {
  std::string info = ReadFile(vm("info"));
  EXPECT_NE(InfoValue(info, "modules-head"), "") << info;
  EXPECT_NE(InfoValue(info, "module-offsets"), "") << info;
  std::string truth = ReadFile(GuestDir(GetParam().guest) + "/truth/modules.txt");
  EXPECT_EQ(InfoValue(info, "modules"),
            std::to_string(std::count(truth.begin(), truth.end(), '\n')))
      << "a clean walk: " << info;
  EXPECT_EQ(info.find("partly"), std::string::npos) << info;
}

INSTANTIATE_TEST_SUITE_P(
    Guests, Linux32GuestTest,
    ::testing::Values(Param{"pae", "raw.mem"}, Param{"legacy32", "raw.mem"},
                      Param{"pae", "core.elf"}, Param{"legacy32", "core.elf"}, Param{"pae", "lime"},
                      Param{"legacy32", "lime"}),
    [](const auto& info) {
      const std::string& f = info.param.file;
      return info.param.guest + "_" + (f == "raw.mem" ? "raw" : f == "lime" ? "lime" : "elf");
    });

// The running 32-bit guests through QMP (qemu:) and through QEMU's GDB stub (gdb:, which
// speaks i386 registers there and stops the VM for each batch of reads): the same discovery on
// live memory, the processes the guest listed, the markers through their own page tables, their
// maps. The shared guests must run on afterwards.
struct LiveParam {
  std::string guest;   // pae or legacy32
  std::string scheme;  // qemu or gdb
};

class Linux32LiveTest : public ::testing::TestWithParam<LiveParam> {
 protected:
  void SetUp() override {
    dir_ = GuestDir(GetParam().guest);
    const std::string source = GetParam().scheme == "gdb" ? "gdb:unix:" + dir_ + "/gdb.sock"
                                                          : "qemu:" + dir_ + "/qmp.sock";
    mount_ = std::make_unique<Mount>(std::vector<std::string>{"g=" + source});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
  }
  void TearDown() override {
    if (mount_ && mount_->ok()) std::ofstream(g() + "/ctl") << "resume\n";
    mount_.reset();  // unmounts: the gdb driver detaches
    EXPECT_EQ(QemuStatus(dir_), "running") << "the shared guest was left stopped";
  }
  std::string g() const { return *mount_ / "g"; }

  // info once the kernel is found: a live VM's kernel is looked for in the background.
  std::string DiscoveredInfo() const {
    std::string info;
    for (int i = 0; i < 300 && InfoValue(info, "types") != "inferred"; ++i) {
      if (i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      info = ReadFile(g() + "/info");
    }
    return info;
  }

  std::string dir_;
  std::unique_ptr<Mount> mount_;
};

TEST_P(Linux32LiveTest, RunningGuestsProcessesAndMarkers) {
  std::string info = DiscoveredInfo();
  ASSERT_EQ(InfoValue(info, "types"), "inferred") << info;
  EXPECT_EQ(InfoValue(info, "page-mode"), GetParam().guest) << info;
  EXPECT_EQ(InfoValue(info, "pointer-size"), "4") << info;
  EXPECT_EQ(InfoValue(info, "kernel-release"), TrimNewline(ReadFile(dir_ + "/truth/uname.txt")))
      << info;
  std::ifstream in(dir_ + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, checked = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    std::string proc = g() + "/proc/" + std::to_string(pid);
    EXPECT_EQ(TrimNewline(ReadFile(proc + "/comm")), "marker") << pid;
    EXPECT_EQ(PreadAt(proc + "/mem", std::stoull(hex, nullptr, 16), text.size()), text)
        << pid << " " << kind;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  // The modules were loaded at boot, before the guest printed them.
  EXPECT_EQ(ReadFile(g() + "/proc/modules"), ReadFile(dir_ + "/truth/modules.txt"));
  // The helpers map nothing after printing their maps (no MAP command is sent here).
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/truth/maps")) {
    std::string pid = e.path().stem();
    EXPECT_EQ(ReadFile(g() + "/proc/" + pid + "/maps"), ReadFile(e.path())) << "pid " << pid;
  }
  EXPECT_EQ(InfoValue(ReadFile(g() + "/info"), "state"), "running");
}

// Every persistent process the guest listed is in proc/ with its comm and parent.
TEST_P(Linux32LiveTest, PersistentProcessesWithCommsAndParents) {
  ASSERT_EQ(InfoValue(DiscoveredInfo(), "types"), "inferred");
  int checked = 0;
  for (const auto& [pid, row] : TruthPs(GetParam().guest)) {
    if (!Persistent(row)) continue;
    std::string dir = g() + "/proc/" + std::to_string(pid) + "/";
    EXPECT_EQ(TrimNewline(ReadFile(dir + "comm")), row.comm) << pid;
    EXPECT_EQ(StatusField(ReadFile(dir + "status"), "PPid"), std::to_string(row.ppid)) << pid;
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

// The vCPUs' eip and cr3 through the stub equal QEMU's own "info registers" while paused
// (qemu-system-i386's stub sends 4-byte registers in i386 order: read with its target.xml).
TEST_P(Linux32LiveTest, RegistersEqualQemusInfoRegisters) {
  std::ofstream(g() + "/ctl") << "pause\n";
  ASSERT_EQ(QemuStatus(dir_), "paused");
  std::string qemu = HmpCommand(dir_ + "/qmp-test.sock", "info registers -a");
  for (int cpu = 0; cpu < 2; ++cpu) {
    size_t at = qemu.find("CPU#" + std::to_string(cpu));
    ASSERT_NE(at, std::string::npos) << qemu;
    std::string block = qemu.substr(at, qemu.find("CPU#", at + 4) - at);
    auto after = [&](const std::string& key) {
      size_t k = block.find(key);
      return k == std::string::npos ? ~uint64_t{0}
                                    : std::stoull(block.substr(k + key.size(), 8), nullptr, 16);
    };
    std::string base = g() + "/vcpu/" + std::to_string(cpu) + "/";
    EXPECT_EQ(std::stoull(ReadFile(base + "cr3"), nullptr, 16), after("CR3=")) << cpu;
    EXPECT_EQ(std::stoull(ReadFile(base + "rip"), nullptr, 16), after("EIP=")) << cpu;
    EXPECT_EQ(std::stoull(ReadFile(base + "cr4"), nullptr, 16), after("CR4=")) << cpu;
  }
  std::ofstream(g() + "/ctl") << "resume\n";
  EXPECT_EQ(QemuStatus(dir_), "running");
}

INSTANTIATE_TEST_SUITE_P(Guests, Linux32LiveTest,
                         ::testing::Values(LiveParam{"pae", "qemu"}, LiveParam{"legacy32", "qemu"},
                                           LiveParam{"pae", "gdb"}, LiveParam{"legacy32", "gdb"}),
                         [](const auto& info) {
                           return info.param.guest + "_" + info.param.scheme;
                         });

// A libvirt domain running each i386 guest (tools/libvirt/define-test-domain.sh on the i386
// image: arch i686, qemu-system-i386), mounted as `vmemfs --libvirt qemu:///system`: the kernel
// release and paging mode, and the processes with their comms and parents as the domain printed
// them on its truth port after booting.
class Linux32LibvirtTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (system("virsh -c qemu:///system list >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "libvirtd is not running: tools/libvirt/start-libvirtd.sh starts it";
    }
    name_ = "vmemfs-live32-" + GetParam();
    Undefine();
    tmp_ = std::make_unique<TempDir>();
    const std::string image =
        GuestsRoot() + (GetParam() == "pae" ? "/image-686-pae" : "/image-686");
    const std::string cpu = GetParam() == "pae" ? "max" : "qemu32";
    dir_ = LastLine("VMEMFS_START=0 VMEMFS_LIBVIRT_DIR=" + tmp_->path() +
                    " VMEMFS_GUEST_IMAGE=" + image + " " + Tools() + "define-test-domain.sh " +
                    name_ + " " + cpu + " 2>/dev/null");
    ASSERT_FALSE(dir_.empty()) << "could not define " << name_;
    ASSERT_EQ(system(("virsh -q -c qemu:///system start " + name_ + " >/dev/null").c_str()), 0);
  }
  void TearDown() override {
    if (!name_.empty()) Undefine();
  }

  static std::string Tools() { return std::string(VMEMFS_SOURCE_DIR) + "/tools/libvirt/"; }
  void Undefine() const {
    (void)!system((Tools() + "undefine-test-domain.sh " + name_ + " >/dev/null 2>&1").c_str());
  }
  // The last line a shell command prints on stdout.
  static std::string LastLine(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return "";
    std::string line;
    char buf[4096];
    while (fgets(buf, sizeof buf, p)) line = buf;
    pclose(p);
    return TrimNewline(line);
  }

  std::string name_, dir_;
  std::unique_ptr<TempDir> tmp_;
};

TEST_P(Linux32LibvirtTest, DiscoveryAndProcessesOfARunningDomain) {
  Mount m({"--libvirt", "qemu:///system"});
  ASSERT_TRUE(m.ok()) << m.error();
  // The guest's own truth, once it has booted (its ttyS1 log, split by guest.py).
  ASSERT_EQ(system(("python3 '" + std::string(VMEMFS_SOURCE_DIR) +
                    "/tools/guest/guest.py' wait-ready --timeout 400 --dir '" + dir_ + "' >&2")
                       .c_str()),
            0);
  const std::string vm = m / name_;
  std::string info;
  for (int i = 0; i < 600 && InfoValue(info, "types") != "inferred"; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    info = ReadFile(vm + "/info");
  }
  ASSERT_EQ(InfoValue(info, "types"), "inferred") << info;
  EXPECT_EQ(InfoValue(info, "driver"), "libvirt") << info;
  EXPECT_EQ(InfoValue(info, "kernel-release"), TrimNewline(ReadFile(dir_ + "/truth/uname.txt")))
      << info;
  EXPECT_EQ(InfoValue(info, "page-mode"), GetParam()) << info;
  EXPECT_EQ(InfoValue(info, "pointer-size"), "4") << info;
  // The helpers and kernel threads it listed (kernel workers come and go), with their comms
  // (a kernel thread's full name) and parents.
  auto truth = TruthPs(dir_);
  ASSERT_FALSE(truth.empty()) << "no ps.tsv in " << dir_ << "/truth";
  int user = 0, kernel_threads = 0;
  for (const auto& [pid, row] : truth) {
    const bool kthread = row.cmdline.empty() && pid != 1;
    if (!(kthread ? row.comm.rfind("kworker/", 0) != 0 : Persistent(row))) continue;
    std::string proc = vm + "/proc/" + std::to_string(pid) + "/";
    EXPECT_EQ(TrimNewline(ReadFile(proc + "comm")), row.comm) << pid;
    EXPECT_EQ(StatusField(ReadFile(proc + "status"), "PPid"), std::to_string(row.ppid)) << pid;
    kernel_threads += kthread;
    user += !kthread;
  }
  EXPECT_GT(kernel_threads, 20);
  EXPECT_GE(user, 5) << "init, 3 markers and the ticker";
  std::ifstream in(dir_ + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, markers = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    EXPECT_EQ(PreadAt(vm + "/proc/" + std::to_string(pid) + "/mem", std::stoull(hex, nullptr, 16),
                      text.size()),
              text)
        << pid << " " << kind;
    ++markers;
  }
  EXPECT_EQ(markers, 12);
}

INSTANTIATE_TEST_SUITE_P(Guests, Linux32LibvirtTest, ::testing::Values("pae", "legacy32"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vmemfs::testing
