#include "vmi/translation_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vmemfs::vmi {
namespace {

constexpr uint64_t kKiB4 = 4096;
constexpr uint64_t kMiB2 = 2ull << 20;
constexpr uint64_t kMiB4 = 4ull << 20;
constexpr uint64_t kGiB1 = 1ull << 30;

Mapping Page(uint64_t va, uint64_t pa, uint64_t size = kKiB4) {
  return Mapping{va, pa, size, true, false, true};
}

bool Same(const Mapping& a, const Mapping& b) {
  return a.va == b.va && a.pa == b.pa && a.size == b.size && a.writable == b.writable &&
         a.user == b.user && a.executable == b.executable;
}

TEST(TranslationCacheTest, HitAndMiss) {
  TranslationCache cache;
  EXPECT_EQ(cache.capacity(), 16384u);
  EXPECT_FALSE(cache.Lookup(0x1000, 0xffff'8880'0000'1000));
  cache.Insert(0x1000, Page(0xffff'8880'0000'1000, 0x5000));
  auto hit = cache.Lookup(0x1000, 0xffff'8880'0000'1abc);
  ASSERT_TRUE(hit);
  EXPECT_TRUE(Same(*hit, Page(0xffff'8880'0000'1000, 0x5000)));
  EXPECT_FALSE(cache.Lookup(0x1000, 0xffff'8880'0000'2000));
  EXPECT_FALSE(cache.Lookup(0x1000, 0xffff'8880'0000'0fff));
  EXPECT_EQ(cache.size(), 1u);
  // Re-inserting the same key replaces the value rather than adding an entry.
  cache.Insert(0x1000, Page(0xffff'8880'0000'1000, 0x6000));
  EXPECT_EQ(cache.Lookup(0x1000, 0xffff'8880'0000'1000)->pa, 0x6000u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(TranslationCacheTest, LargePagesCoverEveryAddressInThem) {
  TranslationCache cache;
  cache.Insert(1, Page(0xffff'ffff'8100'0000, 0x4000'0000, kMiB2));
  cache.Insert(1, Page(0xffff'8880'4000'0000, 0x1'0000'0000, kGiB1));
  cache.Insert(1, Page(0xc000'0000, 0x40'0000, kMiB4));
  for (uint64_t off : {uint64_t{0}, uint64_t{0x1000}, kMiB2 - 1}) {
    auto m = cache.Lookup(1, 0xffff'ffff'8100'0000 + off);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->size, kMiB2);
  }
  EXPECT_FALSE(cache.Lookup(1, 0xffff'ffff'8100'0000 + kMiB2));
  for (uint64_t off : {uint64_t{0}, uint64_t{0x12'3456}, kGiB1 - 1}) {
    auto m = cache.Lookup(1, 0xffff'8880'4000'0000 + off);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pa, 0x1'0000'0000u);
  }
  EXPECT_EQ(cache.Lookup(1, 0xc03f'ffff)->size, kMiB4);
  EXPECT_FALSE(cache.Lookup(1, 0xc040'0000));
  // A 4 KiB mapping at the start of a large page is a different key.
  cache.Insert(1, Page(0xffff'ffff'8100'0000, 0x7000));
  EXPECT_EQ(cache.Lookup(1, 0xffff'ffff'8100'0000)->size, kKiB4);
  EXPECT_EQ(cache.Lookup(1, 0xffff'ffff'8100'1000)->size, kMiB2);
}

TEST(TranslationCacheTest, IgnoresMalformedMappings) {
  TranslationCache cache;
  cache.Insert(1, Page(0x1800, 0x5000));     // not aligned to its size
  cache.Insert(1, Page(0x0, 0x5000, 8192));  // not a page size
  cache.Insert(1, Page(0x20'0000, 0x5000, kMiB2 / 2));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TranslationCacheTest, DistinctDtbs) {
  TranslationCache cache;
  cache.Insert(0x1000, Page(0x40'0000, 0x5000));
  cache.Insert(0x2000, Page(0x40'0000, 0x9000));
  EXPECT_EQ(cache.Lookup(0x1000, 0x40'0000)->pa, 0x5000u);
  EXPECT_EQ(cache.Lookup(0x2000, 0x40'0000)->pa, 0x9000u);
  EXPECT_FALSE(cache.Lookup(0x3000, 0x40'0000));
}

TEST(TranslationCacheTest, CapacityNeverExceeded) {
  for (size_t capacity : {0u, 1u, 5u, 16u, 17u, 100u, 1024u}) {
    TranslationCache cache(capacity);
    EXPECT_EQ(cache.capacity(), capacity);
    for (uint64_t i = 0; i < 10 * capacity + 50; ++i) {
      cache.Insert(i % 3, Page(i * kKiB4, i * kKiB4));
      ASSERT_LE(cache.size(), capacity);
    }
    // Whatever survived is still correct.
    for (uint64_t i = 0; i < 10 * capacity + 50; ++i) {
      if (auto m = cache.Lookup(i % 3, i * kKiB4)) {
        EXPECT_EQ(m->pa, i * kKiB4);
      }
    }
  }
}

TEST(TranslationCacheTest, RecentEntriesSurvive) {
  // The most recent insert into a set is never the one evicted.
  TranslationCache cache(64);
  for (uint64_t i = 0; i < 10000; ++i) {
    cache.Insert(7, Page(i * kKiB4, i));
    ASSERT_TRUE(cache.Lookup(7, i * kKiB4));
  }
  EXPECT_GT(cache.size(), 32u);  // sets fill up, not just a few of them
}

TEST(TranslationCacheTest, Flush) {
  TranslationCache cache;
  for (uint64_t i = 0; i < 100; ++i) cache.Insert(1, Page(i * kKiB4, i * kKiB4));
  EXPECT_GT(cache.size(), 90u);
  cache.Flush();
  EXPECT_EQ(cache.size(), 0u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_FALSE(cache.Lookup(1, i * kKiB4));
  cache.Insert(1, Page(0, 0x5000));
  EXPECT_TRUE(cache.Lookup(1, 0));
}

TEST(TranslationCacheTest, ConcurrentInsertLookup) {
  // Every key (dtb, va) has exactly one value, derived from the key, so any value a lookup
  // returns must be that one: torn or mixed-up entries would show.
  TranslationCache cache(512);
  auto value_for = [](uint64_t dtb, uint64_t page) {
    uint64_t size = page % 7 == 0 ? kMiB2 : kKiB4;
    uint64_t va = (page * kMiB2) & ~(size - 1);
    return Page(va, (dtb << 32) ^ va, size);
  };
  std::atomic<uint64_t> hits = 0, bad = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      uint64_t local_hits = 0;
      for (uint64_t i = 0; i < 200000; ++i) {
        const uint64_t dtb = 0x1000 * (1 + (i + t) % 3);
        const uint64_t page = (i * 2654435761u + t) % 2048;
        const Mapping want = value_for(dtb, page);
        if (i % 4 == static_cast<uint64_t>(t % 4)) {
          cache.Insert(dtb, want);
        } else if (auto got = cache.Lookup(dtb, want.va + 0x10)) {
          ++local_hits;
          // A 4 KiB lookup inside a 2 MiB page may legitimately find either key's mapping, but
          // every value must be one that was inserted for a key covering the address.
          const uint64_t got_page = got->va / kMiB2;
          if (!Same(*got, value_for(dtb, got_page)) || got->va > want.va + 0x10 ||
              want.va + 0x10 - got->va >= got->size) {
            ++bad;
          }
        }
        if (t == 0 && i % 50000 == 0u) cache.Flush();
      }
      hits += local_hits;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  EXPECT_LE(cache.size(), 512u);
}

}  // namespace
}  // namespace vmemfs::vmi
