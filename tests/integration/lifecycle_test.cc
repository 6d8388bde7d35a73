// A live guest through its whole life, mounted once and daemonized as users run vmemfs: QEMU
// started with -S (no kernel yet), then booted, a process that maps memory and one that exits,
// then a reset into a new kernel (new KASLR slide, new processes). Every check compares the
// mount with what the guest printed about itself at that moment (tools/guest: truth/,
// console.log).
#include <fcntl.h>
#include <sys/stat.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string GuestPy() { return std::string(VMEMFS_SOURCE_DIR) + "/tools/guest/guest.py"; }

int RunGuestPy(const std::string& args) {
  std::string cmd = "python3 '" + GuestPy() + "' " + args + " >&2";
  return system(cmd.c_str());
}

// Polls `done` every 100 ms for up to `seconds`; the seconds it took, or -1.
double WaitFor(double seconds, const std::function<bool()>& done) {
  auto start = Clock::now();
  while (true) {
    if (done()) return std::chrono::duration<double>(Clock::now() - start).count();
    if (Clock::now() - start > std::chrono::duration<double>(seconds)) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The inode of `path` (0 if none).
ino_t Inode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The KERNELOFFSET line of the VMCOREINFO note in a vmcore's header (the first page or two).
std::string VmcoreKernelOffset(const std::string& vmcore) {
  std::smatch m;
  std::string head = PreadAt(vmcore, 0, 64 << 10);
  return std::regex_search(head, m, std::regex("KERNELOFFSET=([0-9a-f]+)\n")) ? m.str(1) : "";
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.insert(e.path().filename());
  }
  return names;
}

struct Marker {
  int pid = 0;
  uint64_t heap = 0;
};

// The heap marker of `name` from truth/markers.txt.
Marker TruthMarker(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/truth/markers.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string kind, what, hex, text;
    Marker m;
    if (f >> kind >> m.pid >> what >> hex >> text && kind == "MARKER" && what == "heap" &&
        text.find("-" + name + "-") != std::string::npos) {
      m.heap = std::stoull(hex, nullptr, 16);
      return m;
    }
  }
  return {};
}

// console.log since the guest's last boot, without the serial line's '\r'.
std::string ConsoleOfThisBoot(const std::string& dir) {
  std::string log = ReadFile(dir + "/console.log");
  auto boot = log.rfind("==VMEMFS-BOOT ");
  if (boot != std::string::npos) log.erase(0, boot);
  log.erase(std::remove(log.begin(), log.end(), '\r'), log.end());
  return log;
}

// A marker's report of a MAP command (tools/guest/README.md): the region and the whole maps.
struct MapReport {
  uint64_t start = 0, end = 0;
  std::string text;  // the string that fills it
  std::string maps;
};

std::optional<MapReport> FindMapReport(const std::string& dir, int pid) {
  std::string log = ConsoleOfThisBoot(dir);
  std::string begin = "==VMEMFS-MAP-BEGIN " + std::to_string(pid) + " ";
  auto at = log.find(begin);
  if (at == std::string::npos) return std::nullopt;
  auto end_marker = log.find("==VMEMFS-MAP-END " + std::to_string(pid) + " ", at);
  if (end_marker == std::string::npos) return std::nullopt;
  std::istringstream block(log.substr(at, end_marker - at));
  std::string line, word, start, end;
  std::getline(block, line);  // BEGIN
  std::getline(block, line);  // MAPPED <pid> <seq> <start> <end> <n> <S>
  std::istringstream mapped(line);
  MapReport r;
  int p, seq, pages;
  mapped >> word >> p >> seq >> start >> end >> pages >> r.text;
  r.start = std::stoull(start, nullptr, 16);
  r.end = std::stoull(end, nullptr, 16);
  while (std::getline(block, line)) r.maps += line + "\n";
  return r;
}

// Writes `command` over the marker's heap string through proc/<pid>/mem (--write-memory).
bool SendToMarker(const std::string& vm, const Marker& m, const std::string& command) {
  int fd = open((vm + "/proc/" + std::to_string(m.pid) + "/mem").c_str(), O_WRONLY);
  if (fd < 0) return false;
  std::string bytes = command + std::string(1, '\0');
  bool ok = pwrite(fd, bytes.data(), bytes.size(), off_t(m.heap)) == ssize_t(bytes.size());
  close(fd);
  return ok;
}

class LifecycleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = GuestDir("life");
    RunGuestPy("stop --dir '" + dir_ + "'");
    booted_ = RunGuestPy("boot --dir '" + dir_ + "' --cpu qemu64 --paused --reboot --extra 20 " +
                         "--kernel-dir '" + GuestsRoot() + "/image'") == 0;
  }
  static void TearDownTestSuite() { RunGuestPy("stop --dir '" + dir_ + "'"); }
  void SetUp() override {
    if (!booted_) GTEST_FAIL() << "could not start the test guest (guest.py boot --paused)";
  }
  static std::string dir_;
  static bool booted_;
};
std::string LifecycleTest::dir_;
bool LifecycleTest::booted_ = false;

TEST_F(LifecycleTest, FollowsTheGuestFromFirmwareThroughProcessesToANewKernel) {
  // --- Mounted before the guest ran one instruction, daemonized. ---
  Mount m({"--write-memory", "vm=qemu:" + dir_ + "/qmp.sock"}, MountMode::kDaemon);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string vm = m / "vm";
  std::string info = ReadFile(vm + "/info");
  EXPECT_EQ(InfoValue(info, "os").rfind("none yet, looking again in ", 0), 0u) << info;
  EXPECT_FALSE(Exists(vm + "/proc"));

  // --- Boot: proc/ and symbols/ appear once the kernel is up. ---
  ASSERT_EQ(RunGuestPy("cont --dir '" + dir_ + "'"), 0);
  ASSERT_EQ(RunGuestPy("wait-ready --dir '" + dir_ + "' --boot 1"), 0);
  double seconds = WaitFor(10, [&] { return Exists(vm + "/proc/1/status"); });
  ASSERT_GE(seconds, 0) << "no proc/ 10 s after the guest was READY: " << ReadFile(vm + "/info");
  // How soon is the freshness rule's business (tested in guest_test.cc, without a loaded
  // machine's noise): here it is reported, not asserted.
  std::printf("[ life ] proc/ appeared %.1f s after READY\n", seconds);
  info = ReadFile(vm + "/info");
  EXPECT_EQ(InfoValue(info, "os"), "linux") << info;
  uint64_t banner = TruthSymbol("life", "linux_banner");
  char want[32];
  snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(banner));
  EXPECT_NE(ReadFile(vm + "/symbols/kallsyms").find(std::string(want) + " D linux_banner"),
            std::string::npos);
  EXPECT_EQ(ReadFile(vm + "/symbols/kernel/linux_banner").substr(0, 14), "Linux version ");

  // --- A process maps a new region: the next open of maps shows it, vmem/ has it. ---
  Marker alpha = TruthMarker(dir_, "alpha");
  ASSERT_NE(alpha.pid, 0);
  std::string maps_before = ReadFile(vm + "/proc/" + std::to_string(alpha.pid) + "/maps");
  ASSERT_FALSE(maps_before.empty());
  ASSERT_TRUE(SendToMarker(vm, alpha, "MAP"));
  std::optional<MapReport> mapped;
  ASSERT_GE(WaitFor(20, [&] { return (mapped = FindMapReport(dir_, alpha.pid)).has_value(); }), 0)
      << "the marker did not report its new mapping";
  std::string maps_after;
  EXPECT_GE(WaitFor(3,
                    [&] {
                      maps_after = ReadFile(vm + "/proc/" + std::to_string(alpha.pid) + "/maps");
                      return maps_after == mapped->maps;
                    }),
            0)
      << "maps is not what the process printed:\n"
      << maps_after << "---\n"
      << mapped->maps;
  EXPECT_NE(maps_after, maps_before);
  char region[64];
  snprintf(region, sizeof region, "%llx-%llx", static_cast<unsigned long long>(mapped->start),
           static_cast<unsigned long long>(mapped->end));
  std::string vmem = ReadFile(vm + "/proc/" + std::to_string(alpha.pid) + "/vmem/" + region);
  EXPECT_EQ(vmem.size(), mapped->end - mapped->start);
  EXPECT_EQ(vmem.find(mapped->text), 0u);

  // --- A process exits: it leaves proc/. ---
  Marker bravo = TruthMarker(dir_, "bravo");
  ASSERT_NE(bravo.pid, 0);
  ASSERT_TRUE(SendToMarker(vm, bravo, "EXIT"));
  std::string exited = "VMEMFS-EXIT " + std::to_string(bravo.pid) + " ";
  ASSERT_GE(WaitFor(20, [&] { return ConsoleOfThisBoot(dir_).find(exited) != std::string::npos; }),
            0);
  seconds = WaitFor(5, [&] { return List(vm + "/proc").count(std::to_string(bravo.pid)) == 0; });
  EXPECT_GE(seconds, 0) << "pid " << bravo.pid << " is still listed after it exited";
  // Names the kernel cached are trusted for a second (the live entry timeout), no longer.
  EXPECT_GE(WaitFor(2, [&] { return !Exists(vm + "/proc/" + std::to_string(bravo.pid)); }), 0);

  // --- Reset: another KASLR slide, other processes; the mount follows within seconds. ---
  std::string old_kaslr = InfoValue(ReadFile(vm + "/info"), "kaslr-offset");
  ino_t old_vmcore = Inode(vm + "/vmcore");
  EXPECT_NE(old_vmcore, 0u) << ReadFile(vm + "/info");
  EXPECT_EQ("0x" + VmcoreKernelOffset(vm + "/vmcore"), old_kaslr);
  ASSERT_EQ(RunGuestPy("reset --dir '" + dir_ + "'"), 0);
  uint64_t new_banner = TruthSymbol("life", "linux_banner");
  ASSERT_NE(new_banner, banner) << "the reset kept the KASLR slide: nothing to tell apart";
  snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(new_banner));
  seconds = WaitFor(10, [&] {
    return ReadFile(vm + "/symbols/kallsyms").find(std::string(want) + " D linux_banner") !=
           std::string::npos;
  });
  ASSERT_GE(seconds, 0) << ReadFile(vm + "/info");
  std::printf("[ life ] new kernel seen %.1f s after READY of boot 2\n", seconds);
  info = ReadFile(vm + "/info");
  EXPECT_NE(InfoValue(info, "kaslr-offset"), old_kaslr) << info;
  EXPECT_EQ(InfoValue(info, "state"), "running");
  // vmcore follows the kernel: a new file (inode) whose note is the new kernel's.
  EXPECT_NE(Inode(vm + "/vmcore"), old_vmcore);
  EXPECT_EQ("0x" + VmcoreKernelOffset(vm + "/vmcore"), InfoValue(info, "kaslr-offset"));
  std::string truth_banner = ReadFile(dir_ + "/truth/banner.txt");
  ASSERT_FALSE(truth_banner.empty());
  EXPECT_EQ(ReadFile(vm + "/symbols/kernel/linux_banner").substr(0, truth_banner.size()),
            truth_banner);
  // The new boot's markers, with their new pids and names.
  for (const char* name : {"alpha", "bravo", "charlie"}) {
    Marker now = TruthMarker(dir_, name);
    ASSERT_NE(now.pid, 0) << name;
    EXPECT_EQ(ReadFile(vm + "/proc/" + std::to_string(now.pid) + "/comm"), "marker\n") << name;
    std::string cmdline = ReadFile(vm + "/proc/" + std::to_string(now.pid) + "/cmdline");
    EXPECT_EQ(cmdline, std::string("marker\0", 7) + name + std::string(1, '\0')) << name;
  }
}

// A 32-bit kernel found while it boots has nothing yet to infer its layouts from (no user
// process, no module): the mount must not stay that way once the guest runs.
TEST(Lifecycle32Test, AKernelFoundWhileBootingIsCompletedOnceItRuns) {
  const std::string dir = GuestDir("life32");
  RunGuestPy("stop --dir '" + dir + "'");
  ASSERT_EQ(RunGuestPy("boot --dir '" + dir + "' --cpu max --paused --extra 20 --kernel-dir '" +
                       GuestsRoot() + "/image-686-pae'"),
            0);
  struct Stop {
    std::string dir;
    ~Stop() { RunGuestPy("stop --dir '" + dir + "'"); }
  } stop{dir};
  Mount m({"vm=qemu:" + dir + "/qmp.sock"}, MountMode::kDaemon);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string vm = m / "vm";
  ASSERT_EQ(RunGuestPy("cont --dir '" + dir + "'"), 0);
  // Looked at all through the boot, as a monitoring script would.
  std::atomic<bool> ready{false};
  std::thread wait([&] { ready = RunGuestPy("wait-ready --dir '" + dir + "' --boot 1") == 0; });
  std::string incomplete;  // info while the kernel was found with its types unavailable
  for (auto start = Clock::now(); !ready && Clock::now() - start < std::chrono::seconds(180);) {
    std::string info = ReadFile(vm + "/info");
    if (incomplete.empty() && InfoValue(info, "os") == "linux" &&
        InfoValue(info, "types").rfind("unavailable", 0) == 0) {
      incomplete = info;
    }
    List(vm + "/proc");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  wait.join();
  ASSERT_TRUE(ready);
  EXPECT_FALSE(incomplete.empty()) << "the kernel was never seen without its types while booting";

  // Within the freshness rule's kIncompleteRecheck (10 s) of an access, a look that finds more.
  std::string truth_modules = ReadFile(dir + "/truth/modules.txt");
  ASSERT_FALSE(truth_modules.empty());
  double seconds = WaitFor(30, [&] { return ReadFile(vm + "/proc/modules") == truth_modules; });
  ASSERT_GE(seconds, 0) << ReadFile(vm + "/info");
  std::printf("[ life32 ] complete %.1f s after READY\n", seconds);
  std::string info = ReadFile(vm + "/info");
  EXPECT_EQ(InfoValue(info, "types"), "inferred") << info;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/truth/maps")) {
    std::string pid = e.path().stem();
    EXPECT_EQ(ReadFile(vm + "/proc/" + pid + "/maps"), ReadFile(e.path())) << "pid " << pid;
  }
  for (const auto& [pid, row] : TruthPs(dir)) {
    if (row.comm != "marker" && row.comm != "threads") continue;
    std::string status = ReadFile(vm + "/proc/" + std::to_string(pid) + "/status");
    EXPECT_NE(status.find("Name:\t" + row.comm + "\n"), std::string::npos) << pid;
    EXPECT_NE(status.find("Uid:\t" + row.uid + "\t"), std::string::npos) << pid << status;
    EXPECT_NE(status.find("Threads:\t" + row.threads + "\n"), std::string::npos) << pid;
  }
}

}  // namespace
}  // namespace vmemfs::testing
