// 32-bit Linux guests (Debian's i386 kernels: 686-pae with PAE paging, 686 with 2-level
// paging) understood from memory alone, raw snapshots without registers and QEMU's ELF dumps
// with them. Every answer is checked against what the guest printed about itself
// (tools/guest/README.md). Debian's i386 kernels have neither BTF nor KALLSYMS_ALL: the task
// list's, VMAs', files' and modules' offsets are inferred from memory; what needs more
// (credentials, threads) is not expected here (README.md, "32-bit guests").
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

struct Param {
  std::string guest;  // pae or legacy32 (tools/guest/guest.py GUESTS)
  std::string file;   // raw.mem (no registers) or core.elf
};

std::ostream& operator<<(std::ostream& os, const Param& p) {
  return os << p.guest << "/" << p.file;
}

// [start, end] of the /proc/iomem line named `name` ("Kernel code"), as the guest printed it.
std::pair<uint64_t, uint64_t> TruthIomem(const std::string& guest, const std::string& name) {
  std::istringstream in(ReadFile(GuestDir(guest) + "/truth/iomem.txt"));
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(" : ");
    if (colon == std::string::npos || line.substr(colon + 3) != name) continue;
    size_t first = line.find_first_not_of(' ');
    size_t dash = line.find('-', first);
    return {std::stoull(line.substr(first, dash - first), nullptr, 16),
            std::stoull(line.substr(dash + 1, colon - dash - 1), nullptr, 16)};
  }
  ADD_FAILURE() << "no " << name << " in iomem.txt of " << guest;
  return {0, 0};
}

class Linux32GuestTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    mount_ = std::make_unique<Mount>(
        std::vector<std::string>{"g=" + GuestDir(GetParam().guest) + "/" + GetParam().file});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
  }
  std::string vm(const std::string& rel) const { return *mount_ / ("g/" + rel); }
  std::string raw() const { return GuestDir(GetParam().guest) + "/raw.mem"; }
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
// its pmem is 4 GiB long (the hole between is a hole).
TEST_P(Linux32GuestTest, PmemEqualsTheRawSnapshot) {
  const uint64_t size = std::filesystem::file_size(raw());
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

struct PsRow {
  int pid = 0, ppid = 0;
  std::string state, comm, cmdline;
};

// ps.tsv (pstruth.c): pid ppid tgid state uid gid ... comm cmdline, tab-separated, escaped.
std::map<int, PsRow> TruthPs(const std::string& guest) {
  auto unescape = [](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 == s.size()) {
        out += s[i];
      } else if (s[i + 1] == 'x' && i + 3 < s.size()) {
        out += char(std::stoi(s.substr(i + 2, 2), nullptr, 16));
        i += 3;
      } else {
        char c = s[++i];
        out += c == 't' ? '\t' : c == 'n' ? '\n' : c;
      }
    }
    return out;
  };
  std::ifstream in(GuestDir(guest) + "/truth/ps.tsv");
  std::string line;
  std::getline(in, line);  // header
  std::map<int, PsRow> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    if (f.size() < 8) continue;
    f.resize(9);
    rows[std::stoi(f[0])] = {std::stoi(f[0]), std::stoi(f[1]), f[3], unescape(f[7]),
                             unescape(f[8])};
  }
  return rows;
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
// that still lives is there with its comm (a kernel thread's comm is its name cut at 15
// bytes: the full name needs struct kthread), its parent and its command line.
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
    EXPECT_EQ(comm, row.comm.substr(0, 15)) << pid;
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
  auto truth_ps = TruthPs(GetParam().guest);
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
              "/bin/" + truth_ps[std::stoi(pid)].comm);
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
  std::ifstream truth(GuestDir(GetParam().guest) + "/truth/kallsyms.txt");
  std::string line;
  int checked = 0;
  while (std::getline(truth, line) && checked < 20) {
    size_t tab = line.find("\t[");
    if (tab == std::string::npos) continue;
    std::istringstream fields(line.substr(0, tab));
    std::string addr, type, name;
    fields >> addr >> type >> name;
    if (type != "t" && type != "T") continue;  // code: mapped and non-empty
    std::string module = line.substr(tab + 2, line.size() - tab - 3);
    std::string bytes = ReadFile(vm("symbols/modules/" + module + "/" + name));
    ASSERT_FALSE(bytes.empty()) << line;
    size_t n = std::min<size_t>(bytes.size(), 64);
    EXPECT_EQ(bytes.substr(0, n), PreadAt(vm("kmem"), std::stoull(addr, nullptr, 16), n)) << line;
    ++checked;
  }
  EXPECT_EQ(checked, 20);
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

INSTANTIATE_TEST_SUITE_P(Guests, Linux32GuestTest,
                         ::testing::Values(Param{"pae", "raw.mem"}, Param{"legacy32", "raw.mem"},
                                           Param{"pae", "core.elf"},
                                           Param{"legacy32", "core.elf"}),
                         [](const auto& info) {
                           return info.param.guest + "_" +
                                  (info.param.file == "raw.mem" ? "raw" : "elf");
                         });

// The running 32-bit guests through QMP (qemu:): the same discovery on live memory, the
// processes the guest listed, the markers through their own page tables, their maps.
class Linux32LiveTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Linux32LiveTest, RunningGuestsProcessesAndMarkers) {
  const std::string dir = GuestDir(GetParam());
  Mount m({"g=qemu:" + dir + "/qmp.sock"});
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string g = m / "g";
  std::string info;
  // A live VM's kernel is looked for in the background: give it a few seconds.
  for (int i = 0; i < 100 && InfoValue(info, "types") != "inferred"; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    info = ReadFile(g + "/info");
  }
  ASSERT_EQ(InfoValue(info, "types"), "inferred") << info;
  EXPECT_EQ(InfoValue(info, "page-mode"), GetParam()) << info;
  EXPECT_EQ(InfoValue(info, "pointer-size"), "4") << info;
  std::ifstream in(dir + "/truth/markers.txt");
  std::string kind_word, kind, hex, text;
  int pid, checked = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    std::string proc = g + "/proc/" + std::to_string(pid);
    EXPECT_EQ(TrimNewline(ReadFile(proc + "/comm")), "marker") << pid;
    EXPECT_EQ(PreadAt(proc + "/mem", std::stoull(hex, nullptr, 16), text.size()), text)
        << pid << " " << kind;
    ++checked;
  }
  EXPECT_EQ(checked, 12);
  // The modules were loaded at boot, before the guest printed them.
  EXPECT_EQ(ReadFile(g + "/proc/modules"), ReadFile(dir + "/truth/modules.txt"));
  // The helpers map nothing after printing their maps (no MAP command is sent here).
  for (const auto& e : std::filesystem::directory_iterator(dir + "/truth/maps")) {
    std::string pid = e.path().stem();
    EXPECT_EQ(ReadFile(g + "/proc/" + pid + "/maps"), ReadFile(e.path())) << "pid " << pid;
  }
}

INSTANTIATE_TEST_SUITE_P(Guests, Linux32LiveTest, ::testing::Values("pae", "legacy32"));

}  // namespace
}  // namespace vmemfs::testing
