// The libvirt source spec and URI classification (no libvirtd needed).
#if VMEMFS_WITH_LIBVIRT
#include <gtest/gtest.h>

#include <string>

#include "drivers/libvirt_driver.h"
#include "drivers/registry.h"

namespace vmemfs::drivers {
namespace {

TEST(LibvirtSpecTest, DomainOnlyUsesTheSystemUri) {
  Result<LibvirtSpec> spec = ParseLibvirtSpec("web1");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(*spec, (LibvirtSpec{"web1", "qemu:///system", LibvirtAccess::kAuto}));
}

TEST(LibvirtSpecTest, ParametersAreParsed) {
  Result<LibvirtSpec> spec =
      ParseLibvirtSpec("4dea22b3-1d52-d8f3-2516-782e98ab3fa0?uri=qemu+ssh://h/system&access=peek");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ(spec->domain, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
  EXPECT_EQ(spec->uri, "qemu+ssh://h/system");
  EXPECT_EQ(spec->access, LibvirtAccess::kPeek);
}

TEST(LibvirtSpecTest, RejectsBadSpecs) {
  for (const char* bad : {"", "?uri=qemu:///system", "d?uri=", "d?bogus=1", "d?access=fast", "d?",
                          "d\n", "d?uri=x&"}) {
    Result<LibvirtSpec> spec = ParseLibvirtSpec(bad);
    ASSERT_FALSE(spec) << bad;
    EXPECT_EQ(spec.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseLibvirtSpec(std::string(257, 'a')));
  EXPECT_TRUE(ParseLibvirtSpec(std::string(256, 'a')));
}

TEST(LibvirtSpecTest, LocalUris) {
  EXPECT_TRUE(IsLocalLibvirtUri("qemu:///system"));
  EXPECT_TRUE(IsLocalLibvirtUri("qemu+unix:///session"));
  EXPECT_TRUE(IsLocalLibvirtUri("qemu://localhost/system"));
  EXPECT_FALSE(IsLocalLibvirtUri("qemu+ssh://host/system"));
  EXPECT_FALSE(IsLocalLibvirtUri("qemu+tcp://10.0.0.1:16509/system"));
  EXPECT_FALSE(IsLocalLibvirtUri("alias"));
}

TEST(LibvirtSpecTest, RegisteredInTheRegistry) {
  bool listed = false;
  for (const std::string& line : DescribeBackends()) listed |= line.rfind("libvirt:", 0) == 0;
  EXPECT_TRUE(listed);
  Result<std::unique_ptr<Driver>> bad = OpenSource("libvirt:", {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(LibvirtSpecTest, UnreachableUriFailsWithUnavailable) {
  Result<std::unique_ptr<Driver>> driver =
      OpenSource("libvirt:nothing?uri=qemu+unix:///system?socket=/nonexistent/sock", {});
  ASSERT_FALSE(driver);
  EXPECT_EQ(driver.error().code(), ErrorCode::kUnavailable) << driver.error().ToString();
  EXPECT_NE(driver.error().message().find("libvirt:nothing"), std::string::npos);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_LIBVIRT
