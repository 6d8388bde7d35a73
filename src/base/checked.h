// Overflow-checked arithmetic for guest-derived numbers.
#ifndef VMEMFS_BASE_CHECKED_H_
#define VMEMFS_BASE_CHECKED_H_

#include <cstdint>
#include <optional>

namespace vmemfs {

// a + b, or nullopt on overflow.
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// True if [start, start+len) lies within [0, limit).
inline bool RangeWithin(uint64_t start, uint64_t len, uint64_t limit) {
  return start <= limit && len <= limit - start;
}

}  // namespace vmemfs

#endif  // VMEMFS_BASE_CHECKED_H_
