// The foreign-mapping cache with a fake mapper standing in for Xen.
#if VMEMFS_WITH_XEN
#include "drivers/xen_page_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vmemfs::drivers {
namespace {

// A guest of `frames` frames whose byte at pa is (pa * 7) & 0xff; frame `hole` is absent.
struct FakeGuest {
  size_t frames = 16;
  uint64_t hole = 5;
  bool gone = false;
  std::set<std::byte*> mapped;
  std::vector<std::unique_ptr<std::byte[]>> pages;
};

class FakeMapper final : public ForeignPageMapper {
 public:
  explicit FakeMapper(FakeGuest* guest) : guest_(guest) {}
  Result<std::byte*> Map(uint64_t gfn) override {
    if (guest_->gone) return UnavailableError("gone");
    if (gfn >= guest_->frames || gfn == guest_->hole) return FaultError(gfn * 4096, "absent");
    auto page = std::make_unique<std::byte[]>(kXenPageSize);
    for (uint64_t i = 0; i < kXenPageSize; ++i) {
      page[i] = static_cast<std::byte>(((gfn * kXenPageSize + i) * 7) & 0xff);
    }
    std::byte* p = page.get();
    guest_->pages.push_back(std::move(page));
    guest_->mapped.insert(p);
    return p;
  }
  void Unmap(std::byte* page) override {
    EXPECT_EQ(guest_->mapped.erase(page), 1u) << "unmapped a page that is not mapped";
  }

 private:
  FakeGuest* guest_;
};

std::byte Expected(uint64_t pa) { return static_cast<std::byte>((pa * 7) & 0xff); }

TEST(XenPageCacheTest, ReadsAcrossPages) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  std::vector<std::byte> out(3 * 4096);
  ASSERT_TRUE(cache.Read(4096 - 10, out).ok());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], Expected(4096 - 10 + i)) << i;
  EXPECT_EQ(cache.maps(), 4u);  // frames 0..3
  EXPECT_EQ(cache.cached(), 4u);
}

TEST(XenPageCacheTest, CachedPagesAreNotMappedAgain) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  std::vector<std::byte> out(8);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(cache.Read(0x2000 + i, out).ok());
  EXPECT_EQ(cache.maps(), 1u);
}

TEST(XenPageCacheTest, EvictsTheLeastRecentlyUsed) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 2);
  std::vector<std::byte> out(1);
  ASSERT_TRUE(cache.Read(0 * 4096, out).ok());
  ASSERT_TRUE(cache.Read(1 * 4096, out).ok());
  ASSERT_TRUE(cache.Read(0 * 4096, out).ok());  // 0 most recent
  ASSERT_TRUE(cache.Read(2 * 4096, out).ok());  // evicts 1
  EXPECT_EQ(cache.maps(), 3u);
  ASSERT_TRUE(cache.Read(0 * 4096, out).ok());  // still cached
  EXPECT_EQ(cache.maps(), 3u);
  ASSERT_TRUE(cache.Read(1 * 4096, out).ok());  // mapped again
  EXPECT_EQ(cache.maps(), 4u);
  EXPECT_EQ(cache.cached(), 2u);
  EXPECT_EQ(guest.mapped.size(), 2u);
}

TEST(XenPageCacheTest, AbsentFrameFaultsAtItsFirstByte) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  std::vector<std::byte> out(4096);
  Status s = cache.Read(5 * 4096 - 100, out);
  EXPECT_EQ(s.code(), ErrorCode::kFault);
  EXPECT_EQ(s.address(), 5u * 4096);
}

TEST(XenPageCacheTest, GoneDomainIsUnavailable) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  guest.gone = true;
  std::vector<std::byte> out(1);
  EXPECT_EQ(cache.Read(0, out).code(), ErrorCode::kUnavailable);
}

TEST(XenPageCacheTest, WritesLandInThePage) {
  FakeGuest guest;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  const std::string text = "hello across a page";
  ASSERT_TRUE(cache.Write(4096 - 5, std::as_bytes(std::span(text))).ok());
  std::string back(text.size(), '\0');
  ASSERT_TRUE(cache.Read(4096 - 5, std::as_writable_bytes(std::span(back))).ok());
  EXPECT_EQ(back, text);
}

TEST(XenPageCacheTest, AddressOverflowFaults) {
  FakeGuest guest;
  guest.frames = ~size_t{0};
  guest.hole = 0;
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 4);
  std::vector<std::byte> out(16);
  EXPECT_EQ(cache.Read(~uint64_t{0} - 3, out).code(), ErrorCode::kFault);
}

TEST(XenPageCacheTest, ClearAndDestructionUnmapEverything) {
  FakeGuest guest;
  {
    XenPageCache cache(std::make_unique<FakeMapper>(&guest), 8);
    std::vector<std::byte> out(4 * 4096);
    ASSERT_TRUE(cache.Read(0, out).ok());
    cache.Clear();
    EXPECT_TRUE(guest.mapped.empty());
    ASSERT_TRUE(cache.Read(0x6000, out).ok());
    EXPECT_FALSE(guest.mapped.empty());
  }
  EXPECT_TRUE(guest.mapped.empty());
}

TEST(XenPageCacheTest, ManyThreadsReadConsistentBytes) {
  FakeGuest guest;
  guest.hole = ~uint64_t{0};
  XenPageCache cache(std::make_unique<FakeMapper>(&guest), 3);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::byte> out(100);
      for (int i = 0; i < 2000; ++i) {
        const uint64_t pa = ((i * 7919 + t * 104729) % (16 * 4096 - 100));
        if (!cache.Read(pa, out).ok()) ++bad;
        for (size_t k = 0; k < out.size(); ++k) bad += out[k] != Expected(pa + k);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(guest.mapped.size(), 3u);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_XEN
