// A bounded, thread-safe cache of page translations keyed by (page-table root, virtual page).
//
// Fixed capacity (no growth with use), sharded so concurrent readers rarely contend. Holds
// Mapping values by copy: nothing handed out can dangle. Flush() drops everything; live
// backends flush when the guest may have changed its page tables.
#ifndef VMEMFS_VMI_TRANSLATION_CACHE_H_
#define VMEMFS_VMI_TRANSLATION_CACHE_H_

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "vmi/paging.h"

namespace vmemfs::vmi {

class TranslationCache {
 public:
  // capacity: total entries over all shards. Default: 16384 (a 4 KiB-page working set of 64 MiB).
  explicit TranslationCache(size_t capacity = 16384);

  // The cached mapping that covers `va` under `dtb`, if any.
  std::optional<Mapping> Lookup(uint64_t dtb, uint64_t va) const;
  void Insert(uint64_t dtb, const Mapping& mapping);
  void Flush();

  size_t capacity() const { return capacity_; }
  // Entries in use (for tests); O(capacity).
  size_t size() const;

 private:
  struct Entry {
    uint64_t dtb = 0;
    uint64_t page = 0;  // va >> 12
    Mapping mapping{};
    bool valid = false;
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Entry> entries;  // GUARDED_BY(mu); set-associative: index by page hash
  };
  static constexpr size_t kShards = 16;

  size_t capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_TRANSLATION_CACHE_H_
