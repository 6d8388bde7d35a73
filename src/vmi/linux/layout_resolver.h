// Resolving a walker's struct offsets from the kernel's types, with the first error kept, so a
// layout reads as a flat list of members ("task_struct.tasks", "cred.uid", ...).
#ifndef VMEMFS_VMI_LINUX_LAYOUT_RESOLVER_H_
#define VMEMFS_VMI_LINUX_LAYOUT_RESOLVER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {

// An integer member: where it is and how many bytes (1, 2, 4 or 8).
struct Field {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Not thread-safe; one per resolution. After the first failure every call returns 0/{} and
// status() says what was missing.
class LayoutResolver {
 public:
  explicit LayoutResolver(const KernelTypes& types) : types_(types) {}
  const Status& status() const { return status_; }

  uint64_t Offset(std::string_view type, std::string_view path) {
    auto m = Lookup(type, path);
    return m ? m->offset : 0;
  }
  Field Integer(std::string_view type, std::string_view path) {
    auto m = Lookup(type, path);
    if (!m) return {};
    if (m->bit_size != 0 || (m->size != 1 && m->size != 2 && m->size != 4 && m->size != 8)) {
      Fail(BadDataError(Name(type, path) + ": not an integer of 1, 2, 4 or 8 bytes"));
      return {};
    }
    return {m->offset, m->size};
  }
  uint64_t Size(std::string_view type) {
    if (!status_.ok()) return 0;
    auto s = types_.Size(type);
    if (!s) Fail(s.error());
    return s.value_or(0);
  }
  void Fail(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }

 private:
  static std::string Name(std::string_view type, std::string_view path) {
    return std::string(type) + "." + std::string(path);
  }
  Result<MemberInfo> Lookup(std::string_view type, std::string_view path) {
    if (!status_.ok()) return status_;
    auto m = types_.Member(type, path);
    if (!m) {
      Fail(NotFoundError("kernel has no " + Name(type, path) + " (" + m.error().message() + ")"));
    }
    return m;
  }

  const KernelTypes& types_;
  Status status_;
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LAYOUT_RESOLVER_H_
