#include "drivers/registers.h"

namespace vmemfs::drivers {
namespace {

constexpr std::array<std::string_view, kRegisterCount> kNames = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags",
    "cs", "ss", "ds", "es", "fs", "gs",
    "fs_base", "gs_base", "kernel_gs_base",
    "cr0", "cr2", "cr3", "cr4", "efer",
    "gdtr_base", "gdtr_limit", "idtr_base", "idtr_limit",
};

}  // namespace

std::string_view RegisterName(Register r) { return kNames[static_cast<size_t>(r)]; }

std::optional<Register> RegisterFromName(std::string_view name) {
  for (size_t i = 0; i < kRegisterCount; ++i) {
    if (kNames[i] == name) return static_cast<Register>(i);
  }
  return std::nullopt;
}

}  // namespace vmemfs::drivers
