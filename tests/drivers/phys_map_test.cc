#include "drivers/phys_map.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

namespace vmemfs::drivers {
namespace {

using OffsetRun = PhysRun<uint64_t>;

constexpr uint64_t kTop = UINT64_MAX;

// [0x1000, 0x3000) -> 100, [0x3000, 0x4000) -> 200, [0x8000, 0x9000) -> 300.
PhysMap<uint64_t> ThreeRuns() {
  Result<PhysMap<uint64_t>> map = PhysMap<uint64_t>::Create(
      {{0x1000, 0x3000, 100}, {0x3000, 0x4000, 200}, {0x8000, 0x9000, 300}});
  EXPECT_TRUE(map) << map.error().ToString();
  return *std::move(map);
}

TEST(PhysMapTest, FindsTheRunHoldingAnAddress) {
  const PhysMap<uint64_t> map = ThreeRuns();
  EXPECT_EQ(map.Find(0xfff), nullptr);
  ASSERT_NE(map.Find(0x1000), nullptr);
  EXPECT_EQ(map.Find(0x1000)->value, 100u);
  EXPECT_EQ(map.Find(0x2fff)->value, 100u);
  EXPECT_EQ(map.Find(0x3000)->value, 200u);
  EXPECT_EQ(map.Find(0x4000), nullptr);
  EXPECT_EQ(map.Find(0x8fff)->value, 300u);
  EXPECT_EQ(map.Find(0x9000), nullptr);
  EXPECT_EQ(map.Find(kTop), nullptr);
}

TEST(PhysMapTest, StaleHintIsOnlyAMissedShortcut) {
  const PhysMap<uint64_t> map = ThreeRuns();
  // Each lookup leaves the hint on another run; every answer must still be right.
  for (int round = 0; round < 3; ++round) {
    for (uint64_t pa : {0x8800u, 0x1800u, 0x5000u, 0x3800u, 0x8000u, 0x0u}) {
      const OffsetRun* run = map.Find(pa);
      const bool in_ram = (pa >= 0x1000 && pa < 0x4000) || (pa >= 0x8000 && pa < 0x9000);
      ASSERT_EQ(run != nullptr, in_ram) << std::hex << pa;
      if (run != nullptr) {
        EXPECT_TRUE(run->contains(pa)) << std::hex << pa;
      }
    }
  }
}

TEST(PhysMapTest, FindAtOrAfterSkipsHoles) {
  const PhysMap<uint64_t> map = ThreeRuns();
  EXPECT_EQ(map.FindAtOrAfter(0)->start, 0x1000u);
  EXPECT_EQ(map.FindAtOrAfter(0x3800)->start, 0x3000u);
  EXPECT_EQ(map.FindAtOrAfter(0x4000)->start, 0x8000u);
  EXPECT_EQ(map.FindAtOrAfter(0x9000), nullptr);
  EXPECT_EQ(map.FindAtOrAfter(kTop), nullptr);
}

TEST(PhysMapTest, RangesAndIterationFollowTheRuns) {
  const PhysMap<uint64_t> map = ThreeRuns();
  EXPECT_EQ(map.size(), 3u);
  EXPECT_FALSE(map.empty());
  EXPECT_EQ(std::vector<PhysRange>(map.ranges().begin(), map.ranges().end()),
            (std::vector<PhysRange>{{0x1000, 0x3000}, {0x3000, 0x4000}, {0x8000, 0x9000}}));
  std::vector<uint64_t> values;
  for (const OffsetRun& run : map) values.push_back(run.value);
  EXPECT_EQ(values, (std::vector<uint64_t>{100, 200, 300}));
  EXPECT_TRUE(PhysMap<>().empty());
  EXPECT_EQ(PhysMap<>().Find(0), nullptr);
}

TEST(PhysMapTest, RejectsEmptyUnsortedAndOverlappingRuns) {
  EXPECT_EQ(PhysMap<>::Create({{0x1000, 0x1000}}).error().code(), ErrorCode::kBadData);
  EXPECT_EQ(PhysMap<>::Create({{0x2000, 0x1000}}).error().code(), ErrorCode::kBadData);
  EXPECT_EQ(PhysMap<>::Create({{0x2000, 0x3000}, {0x1000, 0x1800}}).error().code(),
            ErrorCode::kBadData);
  Result<PhysMap<>> overlap = PhysMap<>::Create({{0x1000, 0x3000}, {0x2fff, 0x4000}});
  ASSERT_FALSE(overlap);
  EXPECT_NE(overlap.error().message().find("overlapping"), std::string::npos);
  EXPECT_TRUE(PhysMap<>::Create({{0x1000, 0x2000}, {0x2000, 0x3000}}));
  EXPECT_TRUE(PhysMap<>::Create({}));
  // The highest run a 64-bit exclusive end can hold.
  EXPECT_TRUE(PhysMap<>::Create({{kTop - 0x1000, kTop}}));
}

TEST(PhysMapTest, FromRangesHasDefaultPayloads) {
  const PhysRange ranges[] = {{0, 0x1000}, {0x2000, 0x3000}};
  Result<PhysMap<uint64_t>> map = PhysMap<uint64_t>::FromRanges(ranges);
  ASSERT_TRUE(map);
  EXPECT_EQ(map->Find(0x2000)->value, 0u);
  const PhysRange bad[] = {{0x2000, 0x3000}, {0, 0x1000}};
  EXPECT_FALSE(PhysMap<>::FromRanges(bad));
}

struct Piece {
  uint64_t value, at, done, n;
  bool operator==(const Piece&) const = default;
};

TEST(PhysMapTest, ForEachPieceSplitsAtRunEnds) {
  const PhysMap<uint64_t> map = ThreeRuns();
  std::vector<Piece> pieces;
  auto record = [&](const OffsetRun& run, uint64_t at, uint64_t done, uint64_t n) {
    pieces.push_back({run.value, at, done, n});
    return Status();
  };
  ASSERT_TRUE(map.ForEachPiece(0x2f00, 0x200, record).ok());
  EXPECT_EQ(pieces, (std::vector<Piece>{{100, 0x2f00, 0, 0x100}, {200, 0x3000, 0x100, 0x100}}));

  // A hole: the pieces before it are visited, then kFault at the hole's first byte.
  pieces.clear();
  Status hole = map.ForEachPiece(0x3f00, 0x200, record);
  EXPECT_EQ(hole.code(), ErrorCode::kFault);
  EXPECT_EQ(hole.address(), 0x4000u);
  EXPECT_EQ(pieces, (std::vector<Piece>{{200, 0x3f00, 0, 0x100}}));

  // The visitor's error stops the walk.
  int calls = 0;
  Status stop =
      map.ForEachPiece(0x2f00, 0x200, [&](const OffsetRun&, uint64_t, uint64_t, uint64_t) {
        ++calls;
        return UnavailableError("stop");
      });
  EXPECT_EQ(stop.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(map.ForEachPiece(0, 0, record).ok());  // nothing to visit
}

TEST(PhysMapTest, CheckCoveredNamesTheFirstHoleByte) {
  const PhysMap<uint64_t> map = ThreeRuns();
  EXPECT_TRUE(map.CheckCovered(0x1000, 0x3000).ok());
  EXPECT_EQ(map.CheckCovered(0x1000, 0x3001).address(), 0x4000u);
  EXPECT_EQ(map.CheckCovered(0x800, 0x1000).address(), 0x800u);
  // Past the top of the address space: the last byte no run can hold.
  Result<PhysMap<>> top = PhysMap<>::Create({{kTop - 0x10, kTop}});
  ASSERT_TRUE(top);
  Status wrap = top->CheckCovered(kTop - 0x10, 0x20);
  EXPECT_EQ(wrap.code(), ErrorCode::kFault);
  EXPECT_EQ(wrap.address(), kTop);
}

TEST(PhysMapTest, ConcurrentLookupsAgree) {
  std::vector<OffsetRun> runs;
  for (uint64_t i = 0; i < 64; ++i) runs.push_back({i * 0x2000, i * 0x2000 + 0x1000, i});
  Result<PhysMap<uint64_t>> map = PhysMap<uint64_t>::Create(std::move(runs));
  ASSERT_TRUE(map);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 20000; ++i) {
        const uint64_t pa = ((i * 7 + t) % 128) * 0x1000 + 0x10;
        const OffsetRun* run = map->Find(pa);
        const bool in_ram = (pa / 0x1000) % 2 == 0;
        if ((run != nullptr) != in_ram || (run != nullptr && run->value != pa / 0x2000)) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

TEST(PhysMapTest, MergedRangesJoinsAdjacentPieces) {
  const std::vector<OffsetRun> pieces = {{0, 0x1000, 1}, {0x1000, 0x2000, 2}, {0x3000, 0x4000, 3}};
  EXPECT_EQ(MergedRanges(pieces), (std::vector<PhysRange>{{0, 0x2000}, {0x3000, 0x4000}}));
  EXPECT_TRUE(MergedRanges(std::vector<OffsetRun>()).empty());
}

}  // namespace
}  // namespace vmemfs::drivers
