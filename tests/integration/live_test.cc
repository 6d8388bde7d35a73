// Running VMs mounted through their QMP socket (qemu:), checked against QEMU's own answers
// (on its second monitor, qmp-test.sock) and against the guest's changing memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>
#include <thread>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {
void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

struct Ticker {
  int pid = 0;
  uint64_t va = 0;
};

Ticker TruthTicker(const std::string& dir) {
  std::ifstream in(dir + "/truth/markers.txt");
  std::string kind, word, hex, text;
  Ticker t;
  while (in >> kind) {
    if (kind == "TICKER" && in >> t.pid >> word >> hex >> text) {
      t.va = std::stoull(hex, nullptr, 16);
      return t;
    }
    std::getline(in, text);
  }
  return t;
}

class LiveGuestTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = GuestDir(GetParam());
    mount_ = std::make_unique<Mount>(std::vector<std::string>{"g=qemu:" + dir_ + "/qmp.sock"});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
  }
  void TearDown() override {
    // Never leave the shared guest paused.
    if (mount_ && mount_->ok()) WriteText(vm("ctl"), "resume\n");
  }
  std::string vm(const std::string& rel) const { return *mount_ / ("g/" + rel); }
  std::string dir_;
  std::unique_ptr<Mount> mount_;
};

TEST_P(LiveGuestTest, CtlPausesAndResumesAsQemuReports) {
  EXPECT_EQ(InfoValue(ReadFile(vm("info")), "live"), "yes");
  EXPECT_EQ(InfoValue(ReadFile(vm("info")), "state"), "running");
  EXPECT_EQ(QemuStatus(dir_), "running");
  WriteText(vm("ctl"), "pause\n");
  EXPECT_EQ(QemuStatus(dir_), "paused");
  EXPECT_EQ(TrimNewline(ReadFile(vm("ctl"))), "paused");
  EXPECT_EQ(InfoValue(ReadFile(vm("info")), "state"), "paused");
  WriteText(vm("ctl"), "resume\n");
  EXPECT_EQ(QemuStatus(dir_), "running");
  EXPECT_EQ(InfoValue(ReadFile(vm("info")), "state"), "running");
}

TEST_P(LiveGuestTest, RegistersEqualQemusInfoRegisters) {
  WriteText(vm("ctl"), "pause\n");
  for (int cpu = 0; cpu < 2; ++cpu) {
    std::string qemu = HmpCommand(dir_ + "/qmp-test.sock", "info registers -a");
    // Each CPU's block starts with "CPU#n"; take the n-th block's CR3 and RIP.
    std::smatch m;
    std::string block = qemu.substr(qemu.find("CPU#" + std::to_string(cpu)));
    ASSERT_TRUE(std::regex_search(block, m, std::regex("CR3=([0-9a-f]+)"))) << qemu;
    uint64_t cr3 = std::stoull(m[1], nullptr, 16);
    ASSERT_TRUE(std::regex_search(block, m, std::regex("RIP=([0-9a-f]+)"))) << qemu;
    uint64_t rip = std::stoull(m[1], nullptr, 16);
    std::string base = "vcpu/" + std::to_string(cpu) + "/";
    EXPECT_EQ(std::stoull(ReadFile(vm(base + "cr3")), nullptr, 16), cr3) << cpu;
    EXPECT_EQ(std::stoull(ReadFile(vm(base + "rip")), nullptr, 16), rip) << cpu;
  }
  WriteText(vm("ctl"), "resume\n");
}

TEST_P(LiveGuestTest, ProcessMemoryIsNeverStale) {
  Ticker t = TruthTicker(dir_);
  ASSERT_NE(t.pid, 0) << "no TICKER in truth/markers.txt";
  std::string mem = vm("proc/" + std::to_string(t.pid) + "/mem");
  // Same open file descriptor for both reads: no cache may answer the second.
  int fd = open(mem.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::string prefix = "VMEMFS-TICKER-" + std::to_string(t.pid) + "-";
  auto read_counter = [&]() -> uint64_t {
    char buf[64] = {};
    EXPECT_EQ(pread(fd, buf, prefix.size() + 20, off_t(t.va)), ssize_t(prefix.size() + 20));
    std::string s(buf);
    EXPECT_EQ(s.substr(0, prefix.size()), prefix);
    return s.size() > prefix.size() ? std::stoull(s.substr(prefix.size())) : 0;
  };
  uint64_t first = read_counter();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  uint64_t second = read_counter();
  EXPECT_GT(second, first) << "the ticker advances every 100 ms";
  // mmap keeps working on live files (yara maps whole files).
  void* p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, off_t(t.va & ~4095ull));
  EXPECT_NE(p, MAP_FAILED) << strerror(errno);
  if (p != MAP_FAILED) {
    EXPECT_EQ(memcmp(static_cast<char*>(p) + (t.va & 4095), prefix.data(), prefix.size()), 0);
    munmap(p, 4096);
  }
  close(fd);
}

// With --write-memory, a write to a process's memory reaches the guest: the marker process
// watches its heap marker and says on the console when it changes.
TEST_P(LiveGuestTest, WritesReachTheGuestWithRw) {
  mount_.reset();  // the QMP socket serves one client: this test mounts --write-memory instead
  Mount rw({"--write-memory", "g=qemu:" + dir_ + "/qmp.sock"});
  ASSERT_TRUE(rw.ok()) << rw.error();
  std::ifstream in(dir_ + "/truth/markers.txt");
  std::string word, kind, hex, text;
  int pid = 0;
  uint64_t va = 0;
  while (in >> word) {
    if (word == "MARKER" && in >> pid >> kind >> hex >> text && kind == "heap") break;
    std::getline(in, text);
  }
  ASSERT_EQ(kind, "heap");
  va = std::stoull(hex, nullptr, 16);
  std::string mem = rw / ("g/proc/" + std::to_string(pid) + "/mem");
  std::string changed = text;
  changed.replace(changed.size() - 16, 16, "0123456789abcdef");
  if (changed == text) changed.replace(changed.size() - 16, 16, "fedcba9876543210");
  {
    std::ofstream out(mem, std::ios::in | std::ios::binary);
    out.seekp(std::streamoff(va));
    out.write(changed.data(), std::streamsize(changed.size()));
  }
  EXPECT_EQ(PreadAt(mem, va, changed.size()), changed);
  std::string seen = "VMEMFS-SEEN " + std::to_string(pid) + " heap " + changed;
  bool found = false;
  for (int i = 0; i < 50 && !found; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    found = ReadFile(dir_ + "/console.log").find(seen) != std::string::npos;
  }
  EXPECT_TRUE(found) << "the guest did not report the change: " << seen;
  // Put the marker back for the tests that follow.
  std::ofstream out(mem, std::ios::in | std::ios::binary);
  out.seekp(std::streamoff(va));
  out.write(text.data(), std::streamsize(text.size()));
}

INSTANTIATE_TEST_SUITE_P(Guests, LiveGuestTest, ::testing::Values("l4", "l5"));

// A VM destroyed under the mount: its files fail with EIO, its state says gone, the daemon and
// the other VM keep working.
TEST(LiveFaultTest, KilledQemuGivesEioAndTheRestKeepsWorking) {
  TempDir tmp;
  std::string dir = tmp.path() + "/victim";
  std::string boot = "python3 " + std::string(VMEMFS_SOURCE_DIR) +
                     "/tools/guest/guest.py boot --dir " + dir + " --cpu qemu64 --kernel-dir " +
                     GuestsRoot() + "/image >/dev/null 2>&1";
  ASSERT_EQ(system(boot.c_str()), 0) << "could not boot a guest to kill";
  Mount m({"victim=qemu:" + dir + "/qmp.sock", "other=" + GuestDir("l4") + "/raw.mem"});
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(PreadAt(m / "victim/pmem", 0x1000, 16).size(), 16u);
  int pid = std::stoi(ReadFile(dir + "/qemu.pid"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int err = 0;
  PreadAt(m / "victim/pmem", 0x2000, 16, &err);
  EXPECT_EQ(err, EIO);
  EXPECT_EQ(InfoValue(ReadFile(m / "victim/info"), "state"), "gone");
  EXPECT_EQ(PreadAt(m / "other/pmem", 0x2000, 16),
            PreadAt(GuestDir("l4") + "/raw.mem", 0x2000, 16));
  EXPECT_TRUE(IsMountPoint(m.path()));
}

}  // namespace
}  // namespace vmemfs::testing
