// "0x1f" formatting for addresses and offsets in messages.
#ifndef VMEMFS_BASE_HEX_H_
#define VMEMFS_BASE_HEX_H_

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

namespace vmemfs {

inline std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
  return buf;
}

}  // namespace vmemfs

#endif  // VMEMFS_BASE_HEX_H_
