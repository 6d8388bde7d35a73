// `vmemfs --libvirt URI --libvirt URI2`: a fleet of two libvirt hosts in one mount. The second
// host is a real second libvirtd started here (tools/libvirt/start-second-libvirtd.sh: its own
// state and configuration, plain TCP on 127.0.0.1, test-only), running its own test domain, so
// its domain is read through virDomainMemoryPeek over TCP as a remote host's would be.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

constexpr char kLocal[] = "vmemfs-fleet-local";
constexpr char kRemote[] = "vmemfs-fleet-remote";

std::string Tools() { return std::string(VMEMFS_SOURCE_DIR) + "/tools/libvirt/"; }

bool LibvirtdRunning() { return system("virsh -c qemu:///system list >/dev/null 2>&1") == 0; }

// The last line a shell command prints on stdout ("" if it fails).
std::string LastLine(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string line;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) line = buf;
  return pclose(p) == 0 ? TrimNewline(line) : "";
}

// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool Eventually(const std::function<bool()>& ok, int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return ok();
}

// vmemfs found the guest's kernel where the guest itself says it is.
bool ShowsTruthfulKallsyms(const std::string& vm, const std::string& guest_dir, int seconds) {
  const std::string banner = ReadTruthSymbolText(guest_dir, "linux_banner");
  if (banner.empty()) return false;
  return Eventually(
      [&] {
        return ReadFile(vm + "/symbols/kallsyms").find(banner + " D linux_banner") !=
               std::string::npos;
      },
      seconds);
}

double SecondsToList(const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class LibvirtFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!LibvirtdRunning()) {
      GTEST_SKIP() << "libvirtd is not running: tools/libvirt/start-libvirtd.sh starts it";
    }
    // The second daemon lives in a private mount namespace, which needs / to be a mount point:
    // not so in a chroot (start-second-libvirtd.sh says the same and exits 77).
    if (system("unshare --mount --propagation private true 2>/dev/null") != 0) {
      GTEST_SKIP() << "no private mount namespace here (/ is not a mount point: a chroot?), so "
                      "no second libvirtd";
    }
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    dir_ = "/tmp/vmemfs-fleet-" + std::to_string(getpid());
    remote_uri_ = "qemu+tcp://127.0.0.1:" + std::to_string(port_) + "/system";
    ASSERT_TRUE(StartSecond()) << "could not start a second libvirtd in " << dir_;
    local_dir_ = Define("qemu:///system", kLocal);
    remote_dir_ = Define(remote_uri_, kRemote);
    ASSERT_FALSE(local_dir_.empty() || remote_dir_.empty()) << "could not define the domains";
  }

  void TearDown() override {
    if (dir_.empty()) return;
    system((Tools() + "undefine-test-domain.sh " + kLocal + " >/dev/null 2>&1").c_str());
    system((Tools() + "stop-second-libvirtd.sh " + dir_ + " " + std::to_string(port_) +
            " >/dev/null 2>&1")
               .c_str());
    std::filesystem::remove_all(dir_);
  }

  bool StartSecond() {
    const std::string pid = LastLine(Tools() + "start-second-libvirtd.sh " + dir_ + " " +
                                     std::to_string(port_) + " 2>/dev/null");
    second_pid_ = pid.empty() ? 0 : std::stoi(pid);
    return second_pid_ > 0;
  }

  // Defines and starts a test domain on `uri`; returns its guest directory (truth.log).
  std::string Define(const std::string& uri, const std::string& name) {
    const std::string env = "VMEMFS_START=0 VMEMFS_LIBVIRT_URI=" + uri + " VMEMFS_LIBVIRT_DIR=" +
                            dir_ + "/guests VMEMFS_GUEST_IMAGE=" + GuestsRoot() + "/image ";
    std::string guest = LastLine(env + Tools() + "define-test-domain.sh " + name + " qemu64 2>/dev/null");
    if (guest.empty()) return "";
    if (system(("virsh -q -c " + uri + " start " + name + " >/dev/null").c_str()) != 0) return "";
    return guest;
  }

  int port_ = 0;
  int second_pid_ = 0;
  std::string dir_, remote_uri_, local_dir_, remote_dir_;
};

int GuestPy(const std::string& args) {
  return system(("python3 '" + std::string(VMEMFS_SOURCE_DIR) + "/tools/guest/guest.py' " + args +
                 " >&2")
                    .c_str());
}

// Also a third host that never answers (nothing listens on its port): the mount comes up without
// it, and it never shows nor delays the others.
TEST_F(LibvirtFleetTest, TwoHostsOneDiesAndComesBack) {
  const std::string nowhere = "qemu+tcp://127.0.0.1:" + std::to_string(FreePort()) + "/system";
  Mount m({"--libvirt", "qemu:///system", "--libvirt", remote_uri_, "--libvirt",
           "nowhere=" + nowhere});
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string local = m / ("localhost/" + std::string(kLocal));
  const std::string remote = m / ("127.0.0.1/" + std::string(kRemote));
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(local + "/info"); }, 30))
      << "no " << local;
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(remote + "/info"); }, 30))
      << "no " << remote;

  // Each says how its reads go: the local QEMU's memory, the remote one's through libvirt.
  EXPECT_EQ(InfoValue(ReadFile(local + "/info"), "read_path").rfind("local-", 0), 0u)
      << ReadFile(local + "/info");
  EXPECT_EQ(InfoValue(ReadFile(remote + "/info"), "read_path"), "remote-peek")
      << ReadFile(remote + "/info");

  // Both guests' kernels are where the guests themselves say (their ground truth).
  ASSERT_EQ(GuestPy("wait-ready --dir '" + local_dir_ + "' --boot 1"), 0);
  ASSERT_EQ(GuestPy("wait-ready --dir '" + remote_dir_ + "' --boot 1"), 0);
  EXPECT_TRUE(ShowsTruthfulKallsyms(local, local_dir_, 30)) << ReadFile(local + "/info");
  EXPECT_TRUE(ShowsTruthfulKallsyms(remote, remote_dir_, 120)) << ReadFile(remote + "/info");
  EXPECT_EQ(PreadAt(remote + "/pmem", 0x100000, 64).size(), 64u);
  EXPECT_FALSE(std::filesystem::exists(m / "nowhere"));

  // The second host dies (its QEMU keeps running, as when libvirtd crashes or the network goes).
  ASSERT_EQ(kill(second_pid_, SIGKILL), 0);
  EXPECT_TRUE(Eventually([&] { return InfoValue(ReadFile(remote + "/info"), "state") == "gone"; },
                         30))
      << ReadFile(remote + "/info");
  int err = 0;
  EXPECT_TRUE(PreadAt(remote + "/pmem", 0x100000, 64, &err).empty());
  EXPECT_EQ(err, EIO);
  // The first host does not notice.
  EXPECT_EQ(PreadAt(local + "/pmem", 0x100000, 64).size(), 64u);
  EXPECT_EQ(InfoValue(ReadFile(local + "/info"), "state"), "running");
  EXPECT_LT(SecondsToList(m.path()), 1.0);
  EXPECT_LT(SecondsToList(m / "localhost"), 1.0);
  EXPECT_TRUE(std::filesystem::exists(m / "127.0.0.1")) << "a lost host stays, its domains gone";
  EXPECT_TRUE(ShowsTruthfulKallsyms(local, local_dir_, 10));

  // It comes back: the same domain, read through the new connection.
  ASSERT_TRUE(StartSecond());
  EXPECT_TRUE(Eventually(
      [&] { return InfoValue(ReadFile(remote + "/info"), "state") == "running"; }, 60))
      << ReadFile(remote + "/info");
  EXPECT_EQ(PreadAt(remote + "/pmem", 0x100000, 64).size(), 64u);
  EXPECT_TRUE(ShowsTruthfulKallsyms(remote, remote_dir_, 120)) << ReadFile(remote + "/info");
  EXPECT_TRUE(IsMountPoint(m.path()));
}

}  // namespace
}  // namespace vmemfs::testing
