// QMP reply handling (no libvirtd needed) and the monitor against a real domain.
#if VMEMFS_WITH_LIBVIRT
#include "drivers/libvirt_monitor.h"

#include <gtest/gtest.h>

#include <string>

namespace vmemfs::drivers {
namespace {

TEST(QmpReturnMemberTest, ReturnsTheReturnMemberAsJson) {
  Result<std::string> r = QmpReturnMember(R"({"return":{"running":true},"id":"libvirt-7"})", "d");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, R"({"running":true})");
  Result<std::string> empty = QmpReturnMember(R"({"return":{}})", "d");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "{}");
}

TEST(QmpReturnMemberTest, ErrorsCarryClassAndDescription) {
  Result<std::string> r =
      QmpReturnMember(R"({"error":{"class":"GenericError","desc":"no such thing"}})", "domain x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("domain x"), std::string::npos);
  EXPECT_NE(r.error().message().find("no such thing"), std::string::npos);
  Result<std::string> missing =
      QmpReturnMember(R"({"error":{"class":"CommandNotFound","desc":"x"}})", "d");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kUnsupported);
}

TEST(QmpReturnMemberTest, GarbageIsBadData) {
  for (const char* text : {"", "{", "[1]", "null", R"({"neither":1})", R"({"error":3})", "\xff\xfe",
                           R"({"return":)"}) {
    Result<std::string> r = QmpReturnMember(text, "d");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kBadData) << text;
  }
}

TEST(QmpCommandTextTest, BuildsTheCommandObject) {
  Result<std::string> plain = QmpCommandText("query-status", "");
  ASSERT_TRUE(plain);
  EXPECT_EQ(*plain, R"({"execute":"query-status"})");
  Result<std::string> args = QmpCommandText("human-monitor-command", R"({"command-line":"x"})");
  ASSERT_TRUE(args);
  EXPECT_EQ(*args, R"({"arguments":{"command-line":"x"},"execute":"human-monitor-command"})");
}

TEST(QmpCommandTextTest, RefusesArgumentsThatAreNotAnObject) {
  for (const char* bad : {"[]", "1", "{", "\"s\""}) {
    Result<std::string> r = QmpCommandText("x", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  // Invalid UTF-8 in a command name must not throw.
  EXPECT_TRUE(QmpCommandText("\xff", ""));
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_LIBVIRT
