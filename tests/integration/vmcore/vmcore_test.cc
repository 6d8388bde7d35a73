// MOUNT/<vm>/vmcore opened by the tools users point at a kdump vmcore: crash, drgn and gdb, with
// the test guests' own debug kernel (tools/guest/debug-kernel.sh), on both guests (4- and
// 5-level paging, KASLR on), from a raw snapshot (no registers), an ELF snapshot and the running
// guest (qemu:). What they print is compared with what the guest printed about itself (truth/)
// and with vmemfs's own proc/.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

constexpr uint64_t kStartKernelMap = 0xffffffff80000000ull;

std::string Vmlinux() { return GuestsRoot() + "/image/vmlinux"; }

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Runs a shell command line, stdin from `input`; returns its status and stdout + stderr.
struct Output {
  int status;
  std::string text;
};
Output RunTool(const std::string& command, const std::string& input = "") {
  TempDir tmp;
  std::string in = tmp.path() + "/in", out = tmp.path() + "/out";
  std::ofstream(in) << input;
  int status = std::system(("timeout 600 " + command + " < " + Quote(in) + " > " + Quote(out) +
                            " 2>&1")
                               .c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out)};
}

// The processes that live from the truth to any later moment: init, the helpers the guest
// started and the kernel threads (workers come and go, and /proc shows theirs with a suffix).
bool Lasting(const PsRow& r) {
  bool kthread = r.cmdline.empty() && r.pid != 1;
  if (kthread) return r.comm.rfind("kworker/", 0) != 0;
  return r.pid == 1 || r.comm == "marker" || r.comm == "ticker" ||
         (r.comm == "sleep" && r.cmdline.rfind("sleep 1000", 0) == 0);
}

// pid -> comm of the thread-group leaders in vmemfs's proc/.
std::map<int, std::string> ProcComms(const std::string& proc) {
  std::map<int, std::string> comms;
  for (const auto& e : std::filesystem::directory_iterator(proc)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    comms[std::stoi(name)] = TrimNewline(ReadFile(e.path().string() + "/comm"));
  }
  return comms;
}

// `pid comm` lines -> map.
std::map<int, std::string> ParsePidComm(const std::string& text, const std::regex& line_re) {
  std::map<int, std::string> tasks;
  std::istringstream in(text);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, line_re)) tasks[std::stoi(m[1])] = m[2];
  }
  return tasks;
}

// The parts of our ELF a test checks, read as a tool reads them.
struct Core {
  Elf64_Ehdr ehdr{};
  std::vector<Elf64_Phdr> loads;
  std::vector<std::string> prstatus;  // descs
  std::string vmcoreinfo;
};

Core ReadCore(const std::string& path) {
  Core core;
  std::string head = PreadAt(path, 0, 1 << 20);
  if (head.size() < sizeof(Elf64_Ehdr)) return core;
  std::memcpy(&core.ehdr, head.data(), sizeof(Elf64_Ehdr));
  for (int i = 0; i < core.ehdr.e_phnum; ++i) {
    Elf64_Phdr p;
    uint64_t at = core.ehdr.e_phoff + uint64_t(i) * sizeof(p);
    if (at + sizeof(p) > head.size()) break;
    std::memcpy(&p, head.data() + at, sizeof(p));
    if (p.p_type == PT_LOAD) core.loads.push_back(p);
    if (p.p_type != PT_NOTE || p.p_offset + p.p_filesz > head.size()) continue;
    for (uint64_t n = p.p_offset; n + sizeof(Elf64_Nhdr) <= p.p_offset + p.p_filesz;) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, head.data() + n, sizeof(nh));
      std::string name = head.substr(n + sizeof(nh), nh.n_namesz ? nh.n_namesz - 1 : 0);
      uint64_t desc = n + sizeof(nh) + ((nh.n_namesz + 3) & ~3u);
      std::string text = head.substr(desc, nh.n_descsz);
      if (name == "CORE" && nh.n_type == NT_PRSTATUS) core.prstatus.push_back(text);
      if (name == "VMCOREINFO") core.vmcoreinfo = text;
      n = desc + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return core;
}

struct Param {
  std::string guest;
  std::string source;  // raw.mem, core.elf or qemu
};
std::ostream& operator<<(std::ostream& os, const Param& p) { return os << p.guest << "/" << p.source; }

class VmcoreTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    dir_ = GuestDir(GetParam().guest);
    std::string source = live() ? "qemu:" + dir_ + "/qmp.sock" : dir_ + "/" + GetParam().source;
    mount_ = std::make_unique<Mount>(std::vector<std::string>{"g=" + source});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    struct stat st;
    ASSERT_EQ(stat(vmcore().c_str(), &st), 0) << ReadFile(vm("info"));
    EXPECT_EQ(st.st_mode & 0777, 0400u);
    ASSERT_EQ(access(Vmlinux().c_str(), R_OK), 0) << "no " << Vmlinux();
    truth_ = TruthPs(GetParam().guest);
    ASSERT_GT(truth_.size(), 300u);
  }
  bool live() const { return GetParam().source == "qemu"; }
  std::string vm(const std::string& rel) const { return *mount_ / ("g/" + rel); }
  std::string vmcore() const { return vm("vmcore"); }
  std::string truth(const std::string& file) const { return ReadFile(dir_ + "/truth/" + file); }
  std::string release() const { return TrimNewline(truth("uname.txt")); }

  // What a tool saw must be the guest's: every lasting process of the truth with its comm, and
  // (snapshots, which cannot change) exactly the processes of proc/, by pid and comm. The tools
  // show task_struct.comm, cut at 15 bytes; /proc (and proc/) show a kernel thread's full name.
  void ExpectTheGuestsTasks(const std::map<int, std::string>& seen, const std::string& tool) {
    auto cut = [](const std::string& comm) { return comm.substr(0, 15); };
    int lasting = 0;
    for (const auto& [pid, row] : truth_) {
      if (!Lasting(row)) continue;
      ++lasting;
      auto it = seen.find(pid);
      ASSERT_NE(it, seen.end()) << tool << " lacks pid " << pid << " " << row.comm;
      EXPECT_EQ(it->second, cut(row.comm)) << tool << " pid " << pid;
    }
    EXPECT_GT(lasting, 300);
    if (!live()) {
      std::map<int, std::string> proc = ProcComms(vm("proc"));
      for (auto& [pid, comm] : proc) comm = cut(comm);
      EXPECT_EQ(seen, proc) << tool << " vs proc/";
    }
  }

  // nr_threads as a tool read it: a snapshot's is the number of tasks in proc/ (threads
  // included); a running guest's within a few of the truth's (its idle loop starts a `sleep 1`
  // every second, kernel workers come and go).
  void ExpectTheThreadCount(int nr_threads, const std::string& tool) {
    if (live()) {
      EXPECT_NEAR(nr_threads, int(truth_.size()), 15) << tool;
      return;
    }
    int tasks = 0;
    for (const auto& [pid, comm] : ProcComms(vm("proc"))) {
      for (const auto& t : std::filesystem::directory_iterator(vm("proc/" + std::to_string(pid) + "/task"))) {
        tasks += t.is_directory();
      }
    }
    EXPECT_EQ(nr_threads, tasks) << tool;
  }

  std::string dir_;
  std::unique_ptr<Mount> mount_;
  std::map<int, PsRow> truth_;
};

// Without a tool: the ELF says what the guest is, and its bytes are the guest's.
TEST_P(VmcoreTest, IsAnElfCoreOfTheGuestsRamAndKernel) {
  Core core = ReadCore(vmcore());
  ASSERT_EQ(std::memcmp(core.ehdr.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(core.ehdr.e_type, ET_CORE);
  EXPECT_EQ(core.ehdr.e_machine, EM_X86_64);
  EXPECT_NE(core.vmcoreinfo.find("OSRELEASE=" + release() + "\n"), std::string::npos);
  std::string info = ReadFile(vm("info"));
  EXPECT_NE(core.vmcoreinfo.find("KERNELOFFSET=" + InfoValue(info, "kaslr-offset").substr(2)),
            std::string::npos)
      << info;
  // A note per vCPU where the source has registers; an ELF snapshot's are QEMU's.
  EXPECT_EQ(core.prstatus.size(), GetParam().source == "raw.mem" ? 0u : 2u);
  if (GetParam().source == "core.elf") {
    auto regs = TruthRegisters(GetParam().guest);
    for (size_t cpu = 0; cpu < core.prstatus.size(); ++cpu) {
      uint64_t rip, rsp;
      std::memcpy(&rip, core.prstatus[cpu].data() + 112 + 16 * 8, 8);
      std::memcpy(&rsp, core.prstatus[cpu].data() + 112 + 19 * 8, 8);
      EXPECT_EQ(rip, regs[cpu]["rip"]) << cpu;
      EXPECT_EQ(rsp, regs[cpu]["rsp"]) << cpu;
    }
  }

  // The kernel image first, at its virtual address, p_paddr by phys_base; linux_banner in it.
  ASSERT_GE(core.loads.size(), 2u);
  const Elf64_Phdr& image = core.loads[0];
  uint64_t phys_base = std::stoull(InfoValue(info, "phys-base"), nullptr, 16);
  EXPECT_EQ(image.p_paddr, image.p_vaddr - kStartKernelMap + phys_base);
  uint64_t banner = TruthSymbol(GetParam().guest, "linux_banner");
  std::string text = truth("banner.txt");
  ASSERT_TRUE(banner >= image.p_vaddr && banner < image.p_vaddr + image.p_filesz);
  EXPECT_EQ(PreadAt(vmcore(), image.p_offset + (banner - image.p_vaddr), text.size()), text);

  // With KASLR, last, the image again at its link-time address (for gdb): the same bytes and
  // p_paddr, after the real one (crash takes phys_base from the first kernel-text load).
  uint64_t kaslr = std::stoull(InfoValue(info, "kaslr-offset"), nullptr, 16);
  ASSERT_NE(kaslr, 0u) << "the test guests boot with KASLR";
  ASSERT_GT(kaslr, image.p_filesz) << "a slide this small leaves no room for the copy";
  const Elf64_Phdr& alias = core.loads.back();
  EXPECT_EQ(alias.p_vaddr, image.p_vaddr - kaslr);
  EXPECT_EQ(alias.p_paddr, image.p_paddr);
  EXPECT_EQ(alias.p_offset, image.p_offset);
  EXPECT_EQ(alias.p_filesz, image.p_filesz);
  EXPECT_EQ(alias.p_memsz, image.p_memsz);
  char alias_at[32];
  snprintf(alias_at, sizeof alias_at, "%#llx", (unsigned long long)alias.p_vaddr);
  EXPECT_NE(info.find(std::string("link-time address ") + alias_at + " for gdb"),
            std::string::npos)
      << info;
  const size_t ram_end = core.loads.size() - 1;  // the RAM loads: [1, ram_end)

  // RAM: exactly pmem's ranges, at their direct-map addresses, with pmem's bytes.
  std::vector<std::string> ranges;
  for (size_t i = 1; i < ram_end; ++i) {
    const Elf64_Phdr& p = core.loads[i];
    char r[64];
    snprintf(r, sizeof r, "0x%llx-0x%llx", (unsigned long long)p.p_paddr,
             (unsigned long long)(p.p_paddr + p.p_filesz - 1));
    ranges.push_back(r);
  }
  std::vector<std::string> want;
  std::istringstream lines(info);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("ram-range: ", 0) == 0) want.push_back(line.substr(11));
  }
  EXPECT_EQ(ranges, want);
  uint64_t banner_pa = image.p_paddr + (banner - image.p_vaddr);
  uint64_t bits = GetParam().guest == "l5" ? 57 : 48;
  bool found = false;
  for (size_t i = 1; i < ram_end; ++i) {
    const Elf64_Phdr& p = core.loads[i];
    if (banner_pa < p.p_paddr || banner_pa >= p.p_paddr + p.p_filesz) continue;
    found = true;
    EXPECT_EQ(PreadAt(vmcore(), p.p_offset + (banner_pa - p.p_paddr), text.size()), text);
    uint64_t direct_va = p.p_vaddr + (banner_pa - p.p_paddr);
    EXPECT_EQ(PreadAt(vm("kmem"), direct_va & ((1ull << bits) - 1), text.size()), text)
        << "p_vaddr is not the direct map";
  }
  EXPECT_TRUE(found);

  if (live()) return;
  // A snapshot's RAM, every byte, is pmem's; nothing is a hole (the MMIO gaps are not in the
  // file), and the file ends with the last range.
  for (size_t i = 1; i < ram_end; ++i) {
    const Elf64_Phdr& p = core.loads[i];
    for (uint64_t o = 0; o < p.p_filesz; o += 8 << 20) {
      size_t n = std::min<uint64_t>(8 << 20, p.p_filesz - o);
      ASSERT_EQ(PreadAt(vmcore(), p.p_offset + o, n) == PreadAt(vm("pmem"), p.p_paddr + o, n),
                true)
          << "range " << i << " offset " << o;
    }
  }
  int fd = open(vmcore().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat st;
  fstat(fd, &st);
  EXPECT_EQ(lseek(fd, 0, SEEK_HOLE), st.st_size);
  const Elf64_Phdr& last_ram = core.loads[ram_end - 1];
  EXPECT_EQ(uint64_t(st.st_size), last_ram.p_offset + last_ram.p_filesz);
  close(fd);
}

// crash, as users run it: `crash vmlinux vmcore`, commands on stdin (no terminal). crash 8.0.2
// finds only the idle tasks of this kernel in its task table (`sys` says TASKS: 2, `ps` lists
// two swappers; the same with QEMU's own ELF dump of the guest), so the task list is walked
// with crash's generic `list` through init_task.tasks.
TEST_P(VmcoreTest, CrashOpensItWithoutOptions) {
  Output out = RunTool("crash -s " + Quote(Vmlinux()) + " " + Quote(vmcore()),
                   "sys\np nr_threads\nlist task_struct.tasks -S task_struct.pid,comm -h init_task\n"
                   "quit\n");
  ASSERT_EQ(out.status, 0) << out.text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out.text, m, std::regex("RELEASE: (\\S+)"))) << out.text;
  EXPECT_EQ(m[1], release());
  ASSERT_TRUE(std::regex_search(out.text, m, std::regex("nr_threads = \\$1 = (\\d+)")))
      << out.text;
  ExpectTheThreadCount(std::stoi(m[1]), "crash");
  // `  pid = 42` then `  comm = "name"` for every task (-S reads members without gdb: fast).
  std::map<int, std::string> seen;
  std::regex task_re(R"re(pid = (\d+)\n\s+comm = "(.*)"\n)re");
  for (std::sregex_iterator it(out.text.begin(), out.text.end(), task_re), e; it != e; ++it) {
    seen[std::stoi((*it)[1])] = (*it)[2];
  }
  seen.erase(0);  // init_task, the idle task, which /proc does not list
  ExpectTheGuestsTasks(seen, "crash list");
}

// drgn, as users run it: `drgn -c vmcore -s vmlinux` (with a script: 0.0.22 has no -e).
TEST_P(VmcoreTest, DrgnListsTheGuestsTasks) {
  TempDir tmp;
  std::string script = tmp.path() + "/tasks.py";
  std::ofstream(script) << "from drgn.helpers.linux.pid import for_each_task\n"
                           "print('RELEASE', prog['init_uts_ns'].name.release.string_().decode())\n"
                           "print('THREADS', prog['nr_threads'].value_())\n"
                           "for t in for_each_task(prog):\n"
                           "    if t.pid == t.tgid:\n"
                           "        print('TASK', t.pid.value_(), t.comm.string_().decode())\n";
  Output out = RunTool("drgn -q -c " + Quote(vmcore()) + " -s " + Quote(Vmlinux()) + " " +
                   Quote(script));
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_NE(out.text.find("RELEASE " + release() + "\n"), std::string::npos) << out.text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out.text, m, std::regex("THREADS (\\d+)"))) << out.text;
  ExpectTheThreadCount(std::stoi(m[1]), "drgn");
  auto seen = ParsePidComm(out.text, std::regex(R"(TASK (\d+) (.*))"));
  seen.erase(0);
  ExpectTheGuestsTasks(seen, "drgn");
}

// gdb, as users run it: `gdb vmlinux vmcore`, no options. gdb does not read VMCOREINFO, so it
// looks for the kernel at vmlinux's link-time addresses: the vmcore's copy of the image there
// is what it reads (without it gdb quietly shows vmlinux's own bytes: the right banner, but
// nr_threads 0). nr_threads is in .bss: only the dump can have its value.
TEST_P(VmcoreTest, GdbPrintsLinuxBannerFromTheDump) {
  uint64_t kaslr = std::stoull(InfoValue(ReadFile(vm("info")), "kaslr-offset"), nullptr, 16);
  Output out = RunTool("gdb -batch -nx " + Quote(Vmlinux()) + " " + Quote(vmcore()) +
                       " -ex 'set print elements 0' -ex 'p nr_threads' -ex 'x/s linux_banner'");
  ASSERT_EQ(out.status, 0) << out.text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out.text, m, std::regex("\\$1 = (\\d+)"))) << out.text;
  ExpectTheThreadCount(std::stoi(m[1]), "gdb");
  std::string banner = TrimNewline(truth("banner.txt"));
  EXPECT_NE(out.text.find("<linux_banner>:\t\"" + banner + "\\n\""), std::string::npos)
      << out.text;
  // At the guest's own address less its slide, where vmlinux has it.
  char at[32];
  snprintf(at, sizeof at, "0x%llx <linux_banner>",
           (unsigned long long)(TruthSymbol(GetParam().guest, "linux_banner") - kaslr));
  EXPECT_NE(out.text.find(at), std::string::npos) << "not at the link-time address:\n" << out.text;
}

INSTANTIATE_TEST_SUITE_P(Guests, VmcoreTest,
                         ::testing::Values(Param{"l4", "raw.mem"}, Param{"l4", "core.elf"},
                                           Param{"l4", "qemu"}, Param{"l5", "raw.mem"},
                                           Param{"l5", "core.elf"}, Param{"l5", "qemu"}),
                         [](const auto& info) {
                           std::string s = info.param.guest + "_" + info.param.source;
                           for (char& c : s) c = std::isalnum(c) ? c : '_';
                           return s;
                         });

}  // namespace
}  // namespace vmemfs::testing
