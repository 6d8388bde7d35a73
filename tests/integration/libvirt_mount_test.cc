// `vmemfs --libvirt URI`: every running domain of the connection is a directory that appears
// when the domain starts and disappears when it stops, without remounting.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
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

}  // namespace
}  // namespace vmemfs::testing
