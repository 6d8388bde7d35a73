#include "fs/vm_name.h"

#include <gtest/gtest.h>

#include <string>

#include "fs/info_line.h"

namespace vmemfs::fs {
namespace {

TEST(VmNameTest, OneHarmlessPathComponent) {
  EXPECT_TRUE(CheckVmName("web1").ok());
  EXPECT_TRUE(CheckVmName("a=b c.d-é").ok());
  for (std::string bad : {std::string(), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("a\nb"), std::string("tab\there"), std::string("del\x7f"),
                          std::string(256, 'x')}) {
    Status s = CheckVmName(bad);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(CheckVmName("a\nb").message().find("control character"), std::string::npos);
}

TEST(InfoLineTest, EveryFactStaysOneLine) {
  EXPECT_EQ(InfoLine({"name", "web1"}), "name: web1\n");
  EXPECT_EQ(InfoLine({"os", "linux", "found"}), "os: linux # found\n");
  EXPECT_EQ(InfoLine({"name", "a\nb\tc\x01"}), "name: a\\nb\\tc\\x01\n");
  EXPECT_EQ(InfoLine({"k", "v", "how\nprocesses: 1"}), "k: v # how\\nprocesses: 1\n");
}

}  // namespace
}  // namespace vmemfs::fs
