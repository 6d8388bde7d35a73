#include "vmi/translation_cache.h"

#include <algorithm>
#include <bit>
#include <iterator>

namespace vmemfs::vmi {
namespace {

// Entries per set. Small enough that a probe is a short linear scan of one cache line or two.
constexpr size_t kWays = 4;

// Page sizes a Mapping can have, most common first: Lookup probes them in this order because
// it cannot know which size covers an address until it finds the entry.
constexpr uint64_t kPageSizes[] = {4096, 2ull << 20, 1ull << 30, 4ull << 20};

bool IsPageSize(uint64_t size) {
  return std::find(std::begin(kPageSizes), std::end(kPageSizes), size) != std::end(kPageSizes);
}

// 64-bit mix (splitmix64 finalizer): consecutive pages and dtbs spread over shards and sets.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// A key covers one page of one size: the size is part of it, so a 2 MiB mapping and a 4 KiB
// mapping that start at the same address never alias.
uint64_t Hash(uint64_t dtb, uint64_t page, uint64_t size) {
  return Mix(dtb ^ Mix(page ^ (static_cast<uint64_t>(std::countr_zero(size)) << 58)));
}

}  // namespace

TranslationCache::TranslationCache(size_t capacity) : capacity_(capacity) {
  // Spread the capacity over the shards exactly, then round each shard down to whole sets so
  // the total never exceeds what was asked for.
  for (size_t i = 0; i < kShards; ++i) {
    size_t share = capacity / kShards + (i < capacity % kShards ? 1 : 0);
    size_t ways = std::min(kWays, share);
    shards_[i].entries.resize(ways == 0 ? 0 : share / ways * ways);
  }
}

std::optional<Mapping> TranslationCache::Lookup(uint64_t dtb, uint64_t va) const {
  for (uint64_t size : kPageSizes) {
    const uint64_t page = (va & ~(size - 1)) >> 12;
    const uint64_t h = Hash(dtb, page, size);
    const Shard& shard = shards_[h % kShards];
    const size_t n = shard.entries.size();
    if (n == 0) continue;
    const size_t ways = std::min(kWays, n);
    const size_t set = (h / kShards) % (n / ways);
    std::lock_guard lock(shard.mu);
    for (size_t w = 0; w < ways; ++w) {
      const Entry& e = shard.entries[set * ways + w];
      if (e.valid && e.dtb == dtb && e.page == page && e.mapping.size == size) return e.mapping;
    }
  }
  return std::nullopt;
}

void TranslationCache::Insert(uint64_t dtb, const Mapping& mapping) {
  // Only whole pages of a known size can be found again by Lookup.
  if (!IsPageSize(mapping.size) || (mapping.va & (mapping.size - 1)) != 0) return;
  const uint64_t page = mapping.va >> 12;
  const uint64_t h = Hash(dtb, page, mapping.size);
  Shard& shard = shards_[h % kShards];
  const size_t n = shard.entries.size();
  if (n == 0) return;
  const size_t ways = std::min(kWays, n);
  const size_t set = (h / kShards) % (n / ways);
  Entry* begin = shard.entries.data() + set * ways;
  Entry* end = begin + ways;
  std::lock_guard lock(shard.mu);
  // Replace the same key in place; otherwise the set is a FIFO: shift down, newest at way 0.
  Entry* slot = std::find_if(begin, end, [&](const Entry& e) {
    return e.valid && e.dtb == dtb && e.page == page && e.mapping.size == mapping.size;
  });
  if (slot == end) {
    std::move_backward(begin, end - 1, end);
    slot = begin;
  }
  *slot = Entry{dtb, page, mapping, true};
}

void TranslationCache::Flush() {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (Entry& e : shard.entries) e.valid = false;
  }
}

size_t TranslationCache::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += std::count_if(shard.entries.begin(), shard.entries.end(),
                       [](const Entry& e) { return e.valid; });
  }
  return n;
}

}  // namespace vmemfs::vmi
