#include "drivers/lime.h"

#include <gtest/gtest.h>

#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::BuildLime;
using testing::Bytes;
using testing::Pattern;
using testing::PutAt;

TEST(LimeTest, ParsesRangesSortedWithInclusiveEnd) {
  Bytes file = BuildLime({{0x100000, Pattern(0x1000, 1)}, {0x1000, Pattern(0x2000, 2)}});
  auto layout = ParseLime(file);
  ASSERT_TRUE(layout) << layout.error().ToString();
  EXPECT_EQ(layout->format, "lime");
  ASSERT_EQ(layout->segments.size(), 2u);
  EXPECT_EQ(
      layout->segments[0],
      (SnapshotSegment{.phys_start = 0x1000, .file_offset = 32 + 0x1000 + 32, .size = 0x2000}));
  EXPECT_EQ(layout->segments[1],
            (SnapshotSegment{.phys_start = 0x100000, .file_offset = 32, .size = 0x1000}));
  EXPECT_TRUE(layout->vcpus.empty());
}

TEST(LimeTest, OneByteRange) {
  auto layout = ParseLime(BuildLime({{0x5, Pattern(1, 1)}}));
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->segments[0].size, 1u);
}

TEST(LimeTest, RejectsBadHeaders) {
  const Bytes good = BuildLime({{0x1000, Pattern(0x100, 1)}, {0x2000, Pattern(0x100, 2)}});
  const size_t second = 32 + 0x100;
  struct Case {
    const char* what;
    size_t offset;
    uint64_t value;
    int width;
  } cases[] = {
      {"bad magic", second, 0x12345678, 4},
      {"version", second + 4, 2, 4},
      {"end below start", second + 16, 0x1000, 8},
      {"past end of file", second + 16, 0x2000 + 0x200, 8},
      {"whole address space", second + 8, 0, 8},
  };
  for (const Case& c : cases) {
    Bytes bad = good;
    if (c.width == 4) PutAt<uint32_t>(bad, c.offset, static_cast<uint32_t>(c.value));
    if (c.width == 8) PutAt<uint64_t>(bad, c.offset, c.value);
    if (std::string(c.what) == "whole address space") PutAt<uint64_t>(bad, second + 16, ~0ull);
    auto layout = ParseLime(bad);
    ASSERT_FALSE(layout) << c.what;
    EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
    EXPECT_NE(layout.error().message().find("LiME range 1"), std::string::npos)
        << layout.error().message();
  }
}

TEST(LimeTest, RejectsOverlapAndTrailingGarbage) {
  EXPECT_FALSE(ParseLime(BuildLime({{0x1000, Pattern(0x100, 1)}, {0x10ff, Pattern(2, 2)}})));
  Bytes trailing = BuildLime({{0x1000, Pattern(0x100, 1)}});
  trailing.resize(trailing.size() + 5);
  auto layout = ParseLime(trailing);
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message().find("truncated header"), std::string::npos);
  EXPECT_FALSE(ParseLime(Bytes{}));
}

TEST(LimeTest, LooksLikeLime) {
  EXPECT_TRUE(LooksLikeLime(BuildLime({{0, Pattern(1, 1)}})));
  EXPECT_FALSE(LooksLikeLime(Bytes(4)));
}

}  // namespace
}  // namespace vmemfs::drivers
