// Guest-physical access through single foreign pages: Xen lets dom0 map a guest's frames one by
// one (xenforeignmemory_map), and a map/unmap pair is a hypercall plus a TLB flush, so the last
// few mappings are kept (least recently used out).
//
// The mapper is an interface so the cache's logic runs in tests without Xen.
// Thread safety: all methods, any thread (one mutex; bytes are copied while it is held, so a
// page is never unmapped under a reader).
#ifndef VMEMFS_DRIVERS_XEN_PAGE_CACHE_H_
#define VMEMFS_DRIVERS_XEN_PAGE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

#include "base/status.h"

namespace vmemfs::drivers {

inline constexpr uint64_t kXenPageSize = 4096;

// Maps one 4 KiB guest frame.
class ForeignPageMapper {
 public:
  virtual ~ForeignPageMapper() = default;
  // The frame `gfn` mapped (kXenPageSize bytes, writable if the mapper was made so).
  // Errors: kFault when the guest has no such frame, kUnavailable when the domain is gone.
  virtual Result<std::byte*> Map(uint64_t gfn) = 0;
  virtual void Unmap(std::byte* page) = 0;
};

class XenPageCache {
 public:
  // REQUIRES: capacity >= 1.
  explicit XenPageCache(std::unique_ptr<ForeignPageMapper> mapper, size_t capacity = 64);
  ~XenPageCache();  // unmaps every cached page
  XenPageCache(const XenPageCache&) = delete;
  XenPageCache& operator=(const XenPageCache&) = delete;

  // Driver::ReadPhys/WritePhys semantics: kFault names the first byte that cannot be mapped.
  Status Read(uint64_t pa, std::span<std::byte> out);
  Status Write(uint64_t pa, std::span<const std::byte> in);
  // Unmaps everything (after the guest's memory map may have changed, or when it is gone).
  void Clear();

  size_t cached() const;
  uint64_t maps() const;  // Map calls so far, for tests and statistics

 private:
  struct Entry {
    uint64_t gfn;
    std::byte* page;
  };
  // The mapped page holding `gfn`, now the most recently used. REQUIRES: mu_ held.
  Result<std::byte*> Page(uint64_t gfn);
  template <typename Copy>
  Status Transfer(uint64_t pa, size_t size, Copy copy);

  const std::unique_ptr<ForeignPageMapper> mapper_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recent
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
  uint64_t maps_ = 0;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_XEN_PAGE_CACHE_H_
