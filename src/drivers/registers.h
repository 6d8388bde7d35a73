// x86 vCPU register sets as the drivers report them.
#ifndef VMEMFS_DRIVERS_REGISTERS_H_
#define VMEMFS_DRIVERS_REGISTERS_H_

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vmemfs::drivers {

// Order is the order of the `regs` file. Names (RegisterName) are lower case, as files.
enum class Register : uint8_t {
  kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kRsp,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15,
  kRip, kRflags,
  kCs, kSs, kDs, kEs, kFs, kGs,
  kFsBase, kGsBase, kKernelGsBase,
  kCr0, kCr2, kCr3, kCr4, kEfer,
  kGdtrBase, kGdtrLimit, kIdtrBase, kIdtrLimit,
  kCount,
};
inline constexpr size_t kRegisterCount = static_cast<size_t>(Register::kCount);

std::string_view RegisterName(Register r);
std::optional<Register> RegisterFromName(std::string_view name);

// The registers of one vCPU; a source may know only some of them.
class RegisterSet {
 public:
  std::optional<uint64_t> Get(Register r) const {
    size_t i = static_cast<size_t>(r);
    if (!present_[i]) return std::nullopt;
    return value_[i];
  }
  void Set(Register r, uint64_t v) {
    size_t i = static_cast<size_t>(r);
    value_[i] = v;
    present_[i] = true;
    inferred_[i] = false;
  }
  // A value the source implies but does not state (EFER.LMA of a long-mode ELF core): good
  // enough to choose a paging mode, never shown to users as the register's value.
  void SetInferred(Register r, uint64_t v) {
    Set(r, v);
    inferred_[static_cast<size_t>(r)] = true;
  }
  bool IsInferred(Register r) const { return inferred_[static_cast<size_t>(r)]; }
  bool Has(Register r) const { return present_[static_cast<size_t>(r)]; }
  bool empty() const { return present_.none(); }

 private:
  std::array<uint64_t, kRegisterCount> value_{};
  std::bitset<kRegisterCount> present_;
  std::bitset<kRegisterCount> inferred_;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_REGISTERS_H_
