#include "vmi/linux/kernel_memory.h"

#include <cstring>

namespace vmemfs::vmi::linux_os {

Result<uint64_t> KernelMemory::U64(uint64_t va) { return Unsigned(va, 8); }

Result<uint32_t> KernelMemory::U32(uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t v, Unsigned(va, 4));
  return static_cast<uint32_t>(v);
}

Result<int32_t> KernelMemory::S32(uint64_t va) {
  VMEMFS_ASSIGN_OR_RETURN(uint32_t v, U32(va));
  return static_cast<int32_t>(v);
}

Result<uint64_t> KernelMemory::Unsigned(uint64_t va, uint64_t size) {
  if (size != 1 && size != 2 && size != 4 && size != 8) {
    return InvalidArgumentError("integer of " + std::to_string(size) + " bytes");
  }
  uint64_t v = 0;  // little endian: the low bytes of v
  VMEMFS_TRY(Read(va, std::span(reinterpret_cast<std::byte*>(&v), size)));
  return v;
}

Result<std::string> KernelMemory::String(uint64_t va, size_t max_len) {
  std::string s;
  // Page by page: a string may end just before an unmapped page.
  while (s.size() < max_len) {
    size_t chunk = std::min<size_t>(max_len - s.size(), 4096 - ((va + s.size()) & 4095));
    std::string buf(chunk, '\0');
    VMEMFS_TRY(Read(va + s.size(),
                                 std::span(reinterpret_cast<std::byte*>(buf.data()), chunk)));
    size_t nul = buf.find('\0');
    if (nul != std::string::npos) return s + buf.substr(0, nul);
    s += buf;
  }
  return s;
}

}  // namespace vmemfs::vmi::linux_os
