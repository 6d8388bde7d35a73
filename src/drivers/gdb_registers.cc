#include "drivers/gdb_registers.h"

#include <cstring>
#include <span>
#include <string>

namespace vmemfs::drivers {
namespace {

using R = Register;

constexpr GdbRegisterSlot kX86_64Slots[] = {
    {R::kRax, 0, 8, 0},
    {R::kRbx, 8, 8, 1},
    {R::kRcx, 16, 8, 2},
    {R::kRdx, 24, 8, 3},
    {R::kRsi, 32, 8, 4},
    {R::kRdi, 40, 8, 5},
    {R::kRbp, 48, 8, 6},
    {R::kRsp, 56, 8, 7},
    {R::kR8, 64, 8, 8},
    {R::kR9, 72, 8, 9},
    {R::kR10, 80, 8, 10},
    {R::kR11, 88, 8, 11},
    {R::kR12, 96, 8, 12},
    {R::kR13, 104, 8, 13},
    {R::kR14, 112, 8, 14},
    {R::kR15, 120, 8, 15},
    {R::kRip, 128, 8, 16},
    {R::kRflags, 136, 4, 17},
    {R::kCs, 140, 4, 18},
    {R::kSs, 144, 4, 19},
    {R::kDs, 148, 4, 20},
    {R::kEs, 152, 4, 21},
    {R::kFs, 156, 4, 22},
    {R::kGs, 160, 4, 23},
    {R::kFsBase, 164, 8, 24},
    {R::kGsBase, 172, 8, 25},
    {R::kKernelGsBase, 180, 8, 26},
    {R::kCr0, 188, 8, 27},
    {R::kCr2, 196, 8, 28},
    {R::kCr3, 204, 8, 29},
    {R::kCr4, 212, 8, 30},
    // 220: cr8 (number 31), which RegisterSet does not hold.
    {R::kEfer, 228, 8, 32},
};

// i386-32bit.xml's order of the GPRs is the hardware's: eax, ecx, edx, ebx, esp, ebp, esi, edi.
// k_gs_base (number 18, offset 72) is always 0 there: no such register on i386, left out.
constexpr GdbRegisterSlot kI386Slots[] = {
    {R::kRax, 0, 4, 0},
    {R::kRcx, 4, 4, 1},
    {R::kRdx, 8, 4, 2},
    {R::kRbx, 12, 4, 3},
    {R::kRsp, 16, 4, 4},
    {R::kRbp, 20, 4, 5},
    {R::kRsi, 24, 4, 6},
    {R::kRdi, 28, 4, 7},
    {R::kRip, 32, 4, 8},
    {R::kRflags, 36, 4, 9},
    {R::kCs, 40, 4, 10},
    {R::kSs, 44, 4, 11},
    {R::kDs, 48, 4, 12},
    {R::kEs, 52, 4, 13},
    {R::kFs, 56, 4, 14},
    {R::kGs, 60, 4, 15},
    {R::kFsBase, 64, 4, 16},
    {R::kGsBase, 68, 4, 17},
    {R::kCr0, 76, 4, 19},
    {R::kCr2, 80, 4, 20},
    {R::kCr3, 84, 4, 21},
    {R::kCr4, 88, 4, 22},
    // 92: cr8 (number 23).
    {R::kEfer, 96, 4, 24},
};

std::span<const GdbRegisterSlot> Slots(GdbArch arch) {
  if (arch == GdbArch::kI386) return kI386Slots;
  return kX86_64Slots;
}

// The bytes up to and including the last slot (efer).
size_t MinBytes(GdbArch arch) {
  const GdbRegisterSlot& last = Slots(arch).back();
  return size_t{last.offset} + last.size;
}

}  // namespace

std::string_view GdbArchName(GdbArch arch) {
  return arch == GdbArch::kI386 ? "i386" : "i386:x86-64";
}

Result<GdbArch> GdbArchFromTargetXml(std::string_view xml) {
  constexpr std::string_view kOpen = "<architecture>", kClose = "</architecture>";
  const size_t open = xml.find(kOpen);
  if (open == std::string_view::npos) return GdbArch::kX86_64;
  const size_t from = open + kOpen.size();
  const size_t close = xml.find(kClose, from);
  if (close == std::string_view::npos)
    return BadDataError("target.xml: unterminated <architecture>");
  const std::string_view name = xml.substr(from, close - from);
  if (name == "i386:x86-64") return GdbArch::kX86_64;
  if (name == "i386") return GdbArch::kI386;
  return UnsupportedError("gdb stub's architecture is '" + std::string(name.substr(0, 64)) +
                          "'; only i386 and i386:x86-64 are understood");
}

std::optional<GdbRegisterSlot> FindGdbRegister(GdbArch arch, Register reg) {
  for (const GdbRegisterSlot& s : Slots(arch)) {
    if (s.reg == reg) return s;
  }
  return std::nullopt;
}

Result<RegisterSet> DecodeQemuX86Registers(std::string_view bytes, GdbArch arch) {
  if (bytes.size() < MinBytes(arch)) {
    return BadDataError("register block of " + std::to_string(bytes.size()) + " bytes; QEMU's " +
                        std::string(GdbArchName(arch)) + " layout needs at least " +
                        std::to_string(MinBytes(arch)));
  }
  RegisterSet regs;
  for (const GdbRegisterSlot& s : Slots(arch)) {
    uint64_t v = 0;
    std::memcpy(&v, bytes.data() + s.offset, s.size);  // little endian, as x86
    regs.Set(s.reg, v);
  }
  return regs;
}

}  // namespace vmemfs::drivers
