// The kernel's own type layouts, from the BTF it carries in memory (CONFIG_DEBUG_INFO_BTF):
// struct sizes and member offsets by name, so no per-kernel offsets file is ever needed.
//
// Parsing is done by libbpf over a copy of the guest's BTF bytes; the guest is hostile, so
// the bytes are validated by libbpf and every answer here is bounds-checked again by callers.
#ifndef VMEMFS_VMI_LINUX_KERNEL_TYPES_H_
#define VMEMFS_VMI_LINUX_KERNEL_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/status.h"

namespace vmemfs::vmi::linux_os {

// Where a member lives: byte offset from the start of the outer struct, and size in bytes.
// For bit fields, bit_offset/bit_size describe the bits (offset then is of the containing
// storage unit's first byte).
struct MemberInfo {
  uint64_t offset;
  uint64_t size;
  uint32_t bit_offset = 0;  // within the byte at `offset`, for bit fields
  uint32_t bit_size = 0;    // 0: not a bit field
};

// Thread safety: const methods may be called concurrently.
class KernelTypes {
 public:
  // Parses raw BTF (the bytes between __start_BTF and __stop_BTF). Errors: kBadData.
  // Maximum accepted size: 64 MiB.
  static Result<std::unique_ptr<KernelTypes>> FromBtf(std::span<const std::byte> btf);
  virtual ~KernelTypes() = default;

  // sizeof(struct `type`) (also unions and typedefs resolved). kNotFound if unknown.
  virtual Result<uint64_t> Size(std::string_view type) const = 0;
  // A member by dotted path through nested structs/unions, including anonymous ones:
  // Member("task_struct", "tasks"), Member("mm_struct", "mm_mt.ma_root"),
  // Member("task_struct", "signal") ... kNotFound if the type or a path element is unknown.
  virtual Result<MemberInfo> Member(std::string_view type, std::string_view path) const = 0;
  // True if the type has that member path (for layouts that changed between kernels).
  bool Has(std::string_view type, std::string_view path) const {
    return Member(type, path).has_value();
  }
  // The value of an enumerator, e.g. Enumerator("maple_type", "maple_leaf_64").
  virtual Result<int64_t> Enumerator(std::string_view enum_type, std::string_view name) const = 0;
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_TYPES_H_
