#include "drivers/registry.h"

#include <gtest/gtest.h>

#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::Pattern;
using testing::TempDir;

TEST(RegistryTest, PathWithColonIsASnapshot) {
  TempDir dir;
  const std::string path = dir.Write("vm:1.raw", Pattern(0x1000, 1));
  auto d = OpenSource(path, {});
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ((*d)->kind(), "snapshot");
  EXPECT_EQ((*d)->end_address(), 0x1000u);
}

TEST(RegistryTest, UnknownSchemeIsTreatedAsAPath) {
  auto d = OpenSource("nosuchscheme:/x", {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kOs);
  EXPECT_NE(d.error().message().find("nosuchscheme:/x"), std::string::npos);
}

TEST(RegistryTest, EmptySpecIsInvalid) {
  EXPECT_EQ(OpenSource("", {}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(RegistryTest, DescribeBackendsListsSnapshots) {
  auto lines = DescribeBackends();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind("PATH", 0), 0u);
}

}  // namespace
}  // namespace vmemfs::drivers
