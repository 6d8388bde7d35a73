// The libvirt driver against real domains of qemu:///system (tools/libvirt/*.sh). Skipped when
// libvirtd is not running.
#if VMEMFS_WITH_LIBVIRT
#include "drivers/libvirt_driver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "libvirt_test_util.h"

namespace vmemfs::drivers {
namespace {

using namespace std::chrono_literals;
using testing::kSharedDomain;
using testing::Trim;
using testing::Virsh;

Fact InfoFact(const Driver& driver, const std::string& key) {
  for (const Fact& fact : driver.Describe()) {
    if (fact.key == key) return fact;
  }
  return {};
}

std::string InfoValue(const Driver& driver, const std::string& key) {
  return InfoFact(driver, key).value;
}

// Bytes of guest RAM as QEMU itself saves them (HMP pmemsave, independent of the driver).
std::string PmemSave(uint64_t pa, size_t size) {
  const std::string path = "/tmp/vmemfs-libvirt/pmemsave.bin";
  std::remove(path.c_str());
  Virsh("qemu-monitor-command --hmp " + std::string(kSharedDomain) + " 'pmemsave " +
        std::to_string(pa) + " " + std::to_string(size) + " \"" + path + "\"'");
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class LibvirtDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VMEMFS_REQUIRE_LIBVIRTD();
    ASSERT_TRUE(testing::EnsureSharedDomain()) << "could not boot " << kSharedDomain;
  }
  void TearDown() override {
    // A failed test must not leave the shared guest paused for the next one.
    if (testing::LibvirtdRunning()) Virsh(std::string("resume ") + kSharedDomain);
  }

  std::unique_ptr<Driver> Open(const std::string& params = "") {
    Result<std::unique_ptr<Driver>> d =
        OpenSource(std::string("libvirt:") + kSharedDomain + params, {});
    EXPECT_TRUE(d) << d.error().ToString();
    return d ? std::move(*d) : nullptr;
  }

  // Reads `pa` through the driver while the guest is paused and compares with pmemsave.
  void ExpectSameBytes(Driver& driver, uint64_t pa, size_t size) {
    std::string mine(size, '\0');
    ASSERT_TRUE(driver.ReadPhys(pa, std::as_writable_bytes(std::span(mine))).ok());
    const std::string theirs = PmemSave(pa, size);
    ASSERT_EQ(theirs.size(), size) << "pmemsave failed at " << pa;
    EXPECT_TRUE(mine == theirs) << "bytes differ at 0x" << std::hex << pa;
  }
};

TEST_F(LibvirtDriverTest, DescribesTheDomainAndFindsItsProcess) {
  std::unique_ptr<Driver> driver = Open();
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->kind(), "libvirt");
  EXPECT_TRUE(driver->live());
  EXPECT_EQ(InfoValue(*driver, "domain"), kSharedDomain);
  EXPECT_EQ(InfoValue(*driver, "uuid"), Trim(Virsh(std::string("domuuid ") + kSharedDomain)));
  const std::string pid =
      Trim(testing::Run(std::string("cat /run/libvirt/qemu/") + kSharedDomain + ".pid"));
  EXPECT_EQ(InfoValue(*driver, "pid"), pid);
  EXPECT_NE(InfoFact(*driver, "pid").how.find("command line naming the domain"), std::string::npos);
  EXPECT_EQ(InfoValue(*driver, "access").find("virDomainMemoryPeek"), std::string::npos);
  EXPECT_NE(InfoFact(*driver, "access").how.find("on this host"), std::string::npos);
  EXPECT_EQ(driver->vcpu_count(), 2u);
  // 256 MiB of RAM in all (q35: below 4 GiB, minus nothing the guest can read as RAM).
  uint64_t ram = 0;
  for (const PhysRange& r : driver->ranges()) ram += r.size();
  EXPECT_GE(ram, uint64_t{255} << 20);
}

TEST_F(LibvirtDriverTest, PhysicalBytesEqualQemusOwn) {
  for (const std::string params : {"", "?access=peek"}) {
    SCOPED_TRACE(params);
    std::unique_ptr<Driver> driver = Open(params);
    ASSERT_NE(driver, nullptr);
    ASSERT_TRUE(driver->Pause().ok());
    for (uint64_t pa :
         {uint64_t{0x1000}, uint64_t{0x100000}, uint64_t{0x1000000} - 100, uint64_t{0xfffe000}}) {
      ExpectSameBytes(*driver, pa, 8192);
    }
    std::vector<std::byte> outside(16);
    Status fault = driver->ReadPhys(driver->end_address(), outside);
    EXPECT_EQ(fault.code(), ErrorCode::kFault);
    ASSERT_TRUE(driver->Resume().ok());
  }
}

// Not an assertion: prints the speed of both access methods for the report.
TEST_F(LibvirtDriverTest, MeasureReadSpeed) {
  for (const std::string params : {"", "?access=peek"}) {
    std::unique_ptr<Driver> driver = Open(params);
    ASSERT_NE(driver, nullptr);
    std::vector<std::byte> buf(1 << 20);
    const size_t total = params.empty() ? (64u << 20) : (4u << 20);
    const auto start = std::chrono::steady_clock::now();
    for (size_t done = 0; done < total; done += buf.size()) {
      ASSERT_TRUE(driver->ReadPhys(0x1000000 + done, buf).ok());
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("libvirt %s (%s; %s): %.1f MB/s\n", params.empty() ? "auto" : "peek",
                InfoValue(*driver, "access").c_str(), InfoFact(*driver, "access").how.c_str(),
                total / s / 1e6);
  }
}

TEST_F(LibvirtDriverTest, PauseAndResumeShowInVirsh) {
  std::unique_ptr<Driver> driver = Open();
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->State(), RunState::kRunning);
  ASSERT_TRUE(driver->Pause().ok());
  EXPECT_EQ(Trim(Virsh(std::string("domstate ") + kSharedDomain)), "paused");
  EXPECT_EQ(driver->State(), RunState::kPaused);
  ASSERT_TRUE(driver->Resume().ok());
  EXPECT_EQ(Trim(Virsh(std::string("domstate ") + kSharedDomain)), "running");
  EXPECT_EQ(driver->State(), RunState::kRunning);
}

TEST_F(LibvirtDriverTest, Cr3EqualsInfoRegisters) {
  std::unique_ptr<Driver> driver = Open();
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->Pause().ok());
  const std::string text =
      Virsh(std::string("qemu-monitor-command --hmp ") + kSharedDomain + " 'info registers'");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("CR3=([0-9a-f]+)"))) << text;
  Result<RegisterSet> regs = driver->Registers(0);
  ASSERT_TRUE(regs) << regs.error().ToString();
  ASSERT_TRUE(regs->Get(Register::kCr3).has_value());
  EXPECT_EQ(*regs->Get(Register::kCr3), std::stoull(m[1].str(), nullptr, 16));
  EXPECT_NE(*regs->Get(Register::kCr3), 0u);
  ASSERT_TRUE(driver->Resume().ok());
}

TEST_F(LibvirtDriverTest, UnknownDomainIsNotFound) {
  Result<std::unique_ptr<Driver>> d = OpenSource("libvirt:vmemfs-no-such-domain", {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kNotFound) << d.error().ToString();
}

TEST_F(LibvirtDriverTest, OpenByUuid) {
  const std::string uuid = Trim(Virsh(std::string("domuuid ") + kSharedDomain));
  Result<std::unique_ptr<Driver>> d = OpenSource("libvirt:" + uuid, {});
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(InfoValue(**d, "domain"), kSharedDomain);
}

// Its own domain, not booted: QEMU's RAM and monitor exist from the start.
TEST(LibvirtDriverGoneTest, DestroyedDomainIsGoneWithinASecond) {
  VMEMFS_REQUIRE_LIBVIRTD();
  const std::string name = "vmemfs-test-gone";
  ASSERT_TRUE(testing::StartDomain(name, /*wait=*/false));
  Result<std::unique_ptr<Driver>> d = OpenSource("libvirt:" + name, {});
  ASSERT_TRUE(d) << d.error().ToString();
  Driver& driver = **d;
  std::vector<std::byte> buf(4096);
  ASSERT_TRUE(driver.ReadPhys(0x100000, buf).ok());
  Virsh("destroy " + name);
  const auto start = std::chrono::steady_clock::now();
  while (driver.State() != RunState::kGone && std::chrono::steady_clock::now() - start < 1s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(driver.State(), RunState::kGone);
  EXPECT_EQ(driver.ReadPhys(0x100000, buf).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(driver.Registers(0).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(driver.Pause().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  testing::StopDomain(name);
}

// The domain stays for one second after `what` and is running at the end of it; the driver
// never calls it gone meanwhile, and reads its memory and registers afterwards.
void ExpectStillRunning(Driver& driver, const std::string& name, const std::string& what) {
  SCOPED_TRACE(what);
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 1s) {
    ASSERT_NE(driver.State(), RunState::kGone);
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(Trim(Virsh("domstate " + name)), "running");
  EXPECT_EQ(driver.State(), RunState::kRunning);
  std::vector<std::byte> buf(4096);
  Status read = driver.ReadPhys(0x100000, buf);
  EXPECT_TRUE(read.ok()) << read.ToString();
  Result<RegisterSet> regs = driver.Registers(0);
  EXPECT_TRUE(regs) << regs.error().ToString();
}

// A reset, a reboot and a crash happen inside the same QEMU: the domain runs on, and so does
// the driver. Its own domain, not booted (QEMU's RAM and monitor exist from the start), set to
// reboot in place and to keep a crashed guest. The guest's own actions are played through the
// monitor as the writes the guest would make: 6 to the reset control register (0xcf9, what
// Linux writes to reboot), 1 to the pvpanic port (what a panicking guest's driver writes).
TEST(LibvirtDriverLifecycleTest, ResetRebootAndCrashAreNotGone) {
  VMEMFS_REQUIRE_LIBVIRTD();
  const std::string name = "vmemfs-test-reset";
  ASSERT_TRUE(testing::StartDomain(name, /*wait=*/false,
                                   "VMEMFS_ON_REBOOT=restart VMEMFS_ON_CRASH=preserve"));
  Result<std::unique_ptr<Driver>> d = OpenSource("libvirt:" + name, {});
  ASSERT_TRUE(d) << d.error().ToString();
  Driver& driver = **d;
  ASSERT_EQ(driver.State(), RunState::kRunning);
  const std::string hmp = "qemu-monitor-command --hmp " + name + " ";

  Virsh("reset " + name);
  ExpectStillRunning(driver, name, "virsh reset");

  Virsh(hmp + "'o /b 0xcf9 0x6'");
  ExpectStillRunning(driver, name, "guest reboot");

  // Made persistent, then undefined: libvirt says "undefined", the domain runs on (transient).
  const std::string xml = testing::DomainDir(name) + "/persistent.xml";
  const std::string virsh = std::string("virsh -q -c ") + testing::kUri + " ";
  int status = -1;
  testing::Run(virsh + "dumpxml " + name + " >" + xml + " && " + virsh + "define " + xml + " && " +
                   virsh + "undefine " + name,
               &status);
  EXPECT_EQ(status, 0);
  ExpectStillRunning(driver, name, "undefine while running");

  Virsh(hmp + "'o /b 0x505 1'");
  EXPECT_EQ(Trim(Virsh("domstate " + name)), "crashed");
  EXPECT_EQ(driver.State(), RunState::kPaused);
  std::vector<std::byte> buf(4096);
  EXPECT_TRUE(driver.ReadPhys(0x100000, buf).ok());  // the crashed guest's memory
  Virsh("reset " + name);
  Virsh("resume " + name);
  ExpectStillRunning(driver, name, "reset and resume after a crash");

  testing::StopDomain(name);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_LIBVIRT
