// What of the Xen driver runs without a hypervisor: the source spec, the RAM layout, the
// registry entry, and the clear failure on a machine that is not a Xen dom0.
#if VMEMFS_WITH_XEN
#include "drivers/xen_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "drivers/registry.h"

namespace vmemfs::drivers {
namespace {

TEST(XenSpecTest, NumericDomid) {
  Result<XenSpec> spec = ParseXenSpec("7");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(*spec, (XenSpec{7, ""}));
  EXPECT_EQ(ParseXenSpec("32751")->domid, 32751u);
}

TEST(XenSpecTest, Name) {
  Result<XenSpec> spec = ParseXenSpec("web-1.example");
  ASSERT_TRUE(spec);
  EXPECT_EQ(*spec, (XenSpec{std::nullopt, "web-1.example"}));
  EXPECT_TRUE(ParseXenSpec("7a"));  // not all digits: a name
}

TEST(XenSpecTest, RejectsBadSpecs) {
  for (const char* bad :
       {"", "0", "32752", "65535", "99999999999999999999", "a/b", "a b", "a\n", "\x7f"}) {
    Result<XenSpec> spec = ParseXenSpec(bad);
    ASSERT_FALSE(spec) << bad;
    EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(ParseXenSpec(std::string(65, 'a')));
  EXPECT_TRUE(ParseXenSpec(std::string(64, 'a')));
}

TEST(XenRamRangesTest, SmallGuestIsOneRange) {
  EXPECT_EQ(XenRamRanges(256 * 1024), (std::vector<PhysRange>{{0, 256u << 20}}));
  EXPECT_TRUE(XenRamRanges(0).empty());
}

TEST(XenRamRangesTest, LargeGuestSkipsTheMmioHole) {
  const uint64_t kib = uint64_t{8} << 20;  // 8 GiB
  std::vector<PhysRange> r = XenRamRanges(kib);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (PhysRange{0, 0xf0000000}));
  EXPECT_EQ(r[1].start, uint64_t{1} << 32);
  EXPECT_EQ(r[0].size() + r[1].size(), kib * 1024);
}

TEST(XenRamRangesTest, HugeValuesDoNotOverflow) {
  std::vector<PhysRange> r = XenRamRanges(~uint64_t{0});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_GT(r[1].end, r[1].start);
}

TEST(XenDriverTest, RegisteredAndFailsClearlyWithoutXen) {
  bool listed = false;
  for (const std::string& line : DescribeBackends()) listed |= line.rfind("xen:", 0) == 0;
  EXPECT_TRUE(listed);
  if (access("/dev/xen/privcmd", F_OK) == 0) GTEST_SKIP() << "this machine runs Xen";
  Result<std::unique_ptr<Driver>> d = OpenSource("xen:5", {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(d.error().message().find("/dev/xen/privcmd"), std::string::npos) << d.error().message();
  EXPECT_NE(d.error().message().find("xen:5"), std::string::npos);
  EXPECT_EQ(OpenSource("xen:0", {}).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_XEN
