#include "drivers/xen_page_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace vmemfs::drivers {

XenPageCache::XenPageCache(std::unique_ptr<ForeignPageMapper> mapper, size_t capacity)
    : mapper_(std::move(mapper)), capacity_(capacity) {
  assert(capacity_ >= 1);
}

XenPageCache::~XenPageCache() { Clear(); }

void XenPageCache::Clear() {
  std::lock_guard lock(mu_);
  for (const Entry& e : lru_) mapper_->Unmap(e.page);
  lru_.clear();
  index_.clear();
}

size_t XenPageCache::cached() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

uint64_t XenPageCache::maps() const {
  std::lock_guard lock(mu_);
  return maps_;
}

Result<std::byte*> XenPageCache::Page(uint64_t gfn) {
  if (auto it = index_.find(gfn); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->page;
  }
  ++maps_;
  VMEMFS_ASSIGN_OR_RETURN(std::byte * page, mapper_->Map(gfn));
  if (lru_.size() >= capacity_) {
    mapper_->Unmap(lru_.back().page);
    index_.erase(lru_.back().gfn);
    lru_.pop_back();
  }
  lru_.push_front({gfn, page});
  index_[gfn] = lru_.begin();
  return page;
}

template <typename Copy>
Status XenPageCache::Transfer(uint64_t pa, size_t size, Copy copy) {
  std::lock_guard lock(mu_);
  size_t done = 0;
  while (done < size) {
    const uint64_t at = pa + done;
    if (at < pa) return FaultError(at, "guest-physical address overflow");
    const uint64_t offset = at % kXenPageSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, kXenPageSize - offset));
    Result<std::byte*> page = Page(at / kXenPageSize);
    if (!page) {
      if (page.error().code() == ErrorCode::kFault) return FaultError(at, page.error().message());
      return page.error();
    }
    copy(*page + offset, done, n);
    done += n;
  }
  return Status::Ok();
}

Status XenPageCache::Read(uint64_t pa, std::span<std::byte> out) {
  return Transfer(pa, out.size(), [&](std::byte* mem, size_t done, size_t n) {
    std::memcpy(out.data() + done, mem, n);
  });
}

Status XenPageCache::Write(uint64_t pa, std::span<const std::byte> in) {
  return Transfer(pa, in.size(), [&](std::byte* mem, size_t done, size_t n) {
    std::memcpy(mem, in.data() + done, n);
  });
}

}  // namespace vmemfs::drivers
