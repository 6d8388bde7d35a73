// `vmemfs --libvirt URI`: every running domain of the connection is a directory that appears
// when the domain starts and disappears when it stops, without remounting.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

constexpr char kDomain[] = "vmemfs-mount-test";

bool LibvirtdRunning() { return system("virsh -c qemu:///system list >/dev/null 2>&1") == 0; }

bool Listed(const std::string& dir, const std::string& name) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename() == name) return true;
  }
  return false;
}

// Polls until Listed(dir, name) == want, for up to `seconds`.
bool WaitListed(const std::string& dir, const std::string& name, bool want, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (Listed(dir, name) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string Tools() { return std::string(VMEMFS_SOURCE_DIR) + "/tools/libvirt/"; }

// The last line a shell command prints on stdout.
std::string LastLine(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out, line;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) line = buf;
  pclose(p);
  return TrimNewline(line);
}

int GuestPy(const std::string& args) {
  return system(("python3 '" + std::string(VMEMFS_SOURCE_DIR) + "/tools/guest/guest.py' " + args +
                 " >&2")
                    .c_str());
}

bool WaitFile(const std::string& path, const std::function<bool(const std::string&)>& ok,
              int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (ok(ReadFile(path))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(LibvirtMountTest, DomainsAppearAndDisappearAsTheyStartAndStop) {
  if (!LibvirtdRunning()) {
    GTEST_SKIP() << "libvirtd is not running: tools/libvirt/start-libvirtd.sh starts it";
  }
  system((Tools() + "undefine-test-domain.sh " + kDomain + " >/dev/null 2>&1").c_str());
  Mount m({"--libvirt", "qemu:///system"});
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(Listed(m.path(), kDomain));

  std::string start = "VMEMFS_BOOT_WAIT=0 VMEMFS_GUEST_IMAGE=" + GuestsRoot() + "/image " +
                      Tools() + "define-test-domain.sh " + kDomain + " qemu64 >/dev/null 2>&1";
  ASSERT_EQ(system(start.c_str()), 0) << "could not start a libvirt domain";
  EXPECT_TRUE(WaitListed(m.path(), kDomain, true, 20)) << "the started domain did not appear";
  std::string vm = m / kDomain;
  EXPECT_EQ(InfoValue(ReadFile(vm + "/info"), "driver"), "libvirt");
  EXPECT_EQ(InfoValue(ReadFile(vm + "/info"), "state"), "running");
  EXPECT_EQ(PreadAt(vm + "/pmem", 0x1000, 16).size(), 16u);

  ASSERT_EQ(system((Tools() + "undefine-test-domain.sh " + kDomain + " >/dev/null 2>&1").c_str()),
            0);
  EXPECT_TRUE(WaitListed(m.path(), kDomain, false, 20)) << "the stopped domain is still listed";
  EXPECT_TRUE(IsMountPoint(m.path())) << "the daemon must survive its domains";
}

// The usual way to run it (daemonized), with a domain that starts after the mount: it appears,
// its kernel is found as it boots, and `virsh reset` is a new kernel, not a gone VM.
TEST(LibvirtMountTest, DaemonizedMountFollowsADomainThroughBootAndReset) {
  if (!LibvirtdRunning()) {
    GTEST_SKIP() << "libvirtd is not running: tools/libvirt/start-libvirtd.sh starts it";
  }
  const std::string name = std::string(kDomain) + "-life";
  system((Tools() + "undefine-test-domain.sh " + name + " >/dev/null 2>&1").c_str());
  Mount m({"--libvirt", "qemu:///system"}, MountMode::kDaemon);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::string dir =
      LastLine("VMEMFS_START=0 VMEMFS_GUEST_IMAGE=" + GuestsRoot() + "/image " + Tools() +
               "define-test-domain.sh " + name + " qemu64 20 2>/dev/null");
  ASSERT_FALSE(dir.empty()) << "could not define a libvirt domain";
  ASSERT_EQ(system(("virsh -q -c qemu:///system start " + name + " >/dev/null").c_str()), 0);
  ASSERT_TRUE(WaitListed(m.path(), name, true, 20)) << "the started domain did not appear";
  const std::string vm = m / name;

  ASSERT_EQ(GuestPy("wait-ready --dir '" + dir + "' --boot 1"), 0);
  std::string banner = ReadTruthSymbolText(dir, "linux_banner");
  ASSERT_FALSE(banner.empty());
  EXPECT_TRUE(WaitFile(
      vm + "/symbols/kallsyms",
      [&](const std::string& k) { return k.find(banner + " D linux_banner") != std::string::npos; },
      10))
      << ReadFile(vm + "/info");
  EXPECT_FALSE(ReadFile(vm + "/proc/1/status").empty());

  ASSERT_EQ(system(("virsh -q -c qemu:///system reset " + name + " >/dev/null").c_str()), 0);
  ASSERT_EQ(GuestPy("wait-ready --dir '" + dir + "' --boot 2"), 0);
  std::string new_banner = ReadTruthSymbolText(dir, "linux_banner");
  ASSERT_NE(new_banner, banner) << "the reset kept the KASLR slide";
  EXPECT_TRUE(WaitFile(
      vm + "/symbols/kallsyms",
      [&](const std::string& k) {
        return k.find(new_banner + " D linux_banner") != std::string::npos;
      },
      10))
      << ReadFile(vm + "/info");
  EXPECT_EQ(InfoValue(ReadFile(vm + "/info"), "state"), "running");
  EXPECT_TRUE(Listed(m.path(), name));
  system((Tools() + "undefine-test-domain.sh " + name + " >/dev/null 2>&1").c_str());
}

}  // namespace
}  // namespace vmemfs::testing
