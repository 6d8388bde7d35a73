#include "drivers/elf_cpu_notes.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "base/byte_reader.h"

namespace vmemfs::drivers {
namespace {

using R = Register;

// elf_prstatus.pr_reg offsets: after siginfo, cursig, sigpend/sighold, four pids and four
// timevals, whose sizes depend on the word size.
constexpr size_t kPrstatus64RegsOffset = 112;
constexpr size_t kPrstatus32RegsOffset = 72;

// x86_64 user_regs_struct: index of each u64 word we report (orig_rax is skipped).
constexpr std::array<std::pair<size_t, R>, 26> kUserRegs64 = {{
    {0, R::kR15},     {1, R::kR14},     {2, R::kR13},     {3, R::kR12},  {4, R::kRbp},
    {5, R::kRbx},     {6, R::kR11},     {7, R::kR10},     {8, R::kR9},   {9, R::kR8},
    {10, R::kRax},    {11, R::kRcx},    {12, R::kRdx},    {13, R::kRsi}, {14, R::kRdi},
    {16, R::kRip},    {17, R::kCs},     {18, R::kRflags}, {19, R::kRsp}, {20, R::kSs},
    {21, R::kFsBase}, {22, R::kGsBase}, {23, R::kDs},     {24, R::kEs},  {25, R::kFs},
    {26, R::kGs},
}};
constexpr size_t kUserRegs64Words = 27;

// i386 user_regs_struct: u32 words; selectors are u16 with a pad, so only the low half counts.
constexpr std::array<std::pair<size_t, R>, 16> kUserRegs32 = {{
    {0, R::kRbx},
    {1, R::kRcx},
    {2, R::kRdx},
    {3, R::kRsi},
    {4, R::kRdi},
    {5, R::kRbp},
    {6, R::kRax},
    {7, R::kDs},
    {8, R::kEs},
    {9, R::kFs},
    {10, R::kGs},
    {12, R::kRip},
    {13, R::kCs},
    {14, R::kRflags},
    {15, R::kRsp},
    {16, R::kSs},
}};
constexpr size_t kUserRegs32Words = 17;

bool IsSelector(R r) {
  return r == R::kCs || r == R::kSs || r == R::kDs || r == R::kEs || r == R::kFs || r == R::kGs;
}

template <typename Word>
uint64_t WordAt(std::span<const std::byte> desc, size_t offset) {
  Word w;
  std::memcpy(&w, desc.data() + offset, sizeof(w));
  return w;
}

template <typename Word, size_t N>
Result<RegisterSet> ParseUserRegs(std::span<const std::byte> desc, size_t regs_offset, size_t words,
                                  const std::array<std::pair<size_t, R>, N>& map) {
  const size_t need = regs_offset + words * sizeof(Word);
  if (desc.size() < need) {
    return BadDataError("NT_PRSTATUS note too short: " + std::to_string(desc.size()) +
                        " bytes, need " + std::to_string(need));
  }
  RegisterSet regs;
  for (const auto& [index, reg] : map) {
    uint64_t v = WordAt<Word>(desc, regs_offset + index * sizeof(Word));
    regs.Set(reg, IsSelector(reg) ? (v & 0xffff) : v);
  }
  return regs;
}

// QEMUCPUState layout (all little-endian):
//   u32 version, u32 size, u64 rax rbx rcx rdx rsi rdi rsp rbp r8..r15, u64 rip, rflags,
//   10 x QEMUCPUSegment {u32 selector, limit, flags, pad; u64 base}: cs ds es fs gs ss ldt tr
//   gdt idt, u64 cr[5], then (newer QEMU, announced through `size`) u64 kernel_gs_base.
constexpr uint32_t kQemuCpuStateVersion = 1;
constexpr size_t kQemuGprOffset = 8;
constexpr size_t kQemuRipOffset = 136;
constexpr size_t kQemuSegmentsOffset = 152;
constexpr size_t kQemuSegmentSize = 24;
constexpr size_t kQemuCrOffset = 392;
constexpr size_t kQemuKernelGsBaseOffset = 432;
constexpr size_t kQemuStateMinSize = kQemuKernelGsBaseOffset;  // through cr[4]

constexpr std::array<R, 16> kQemuGprs = {
    R::kRax, R::kRbx, R::kRcx, R::kRdx, R::kRsi, R::kRdi, R::kRsp, R::kRbp,
    R::kR8,  R::kR9,  R::kR10, R::kR11, R::kR12, R::kR13, R::kR14, R::kR15,
};
// Segment slots 0..5 in QEMU's order; ldt (6) and tr (7) have no register here.
constexpr std::array<R, 6> kQemuSelectors = {R::kCs, R::kDs, R::kEs, R::kFs, R::kGs, R::kSs};
constexpr size_t kQemuFsSlot = 3;
constexpr size_t kQemuGsSlot = 4;
constexpr size_t kQemuGdtSlot = 8;
constexpr size_t kQemuIdtSlot = 9;

size_t SegmentOffset(size_t slot) { return kQemuSegmentsOffset + slot * kQemuSegmentSize; }

void SetQemuSegments(std::span<const std::byte> s, RegisterSet& regs) {
  for (size_t slot = 0; slot < kQemuSelectors.size(); ++slot) {
    regs.Set(kQemuSelectors[slot], WordAt<uint32_t>(s, SegmentOffset(slot)) & 0xffff);
  }
  regs.Set(R::kFsBase, WordAt<uint64_t>(s, SegmentOffset(kQemuFsSlot) + 16));
  regs.Set(R::kGsBase, WordAt<uint64_t>(s, SegmentOffset(kQemuGsSlot) + 16));
  regs.Set(R::kGdtrLimit, WordAt<uint32_t>(s, SegmentOffset(kQemuGdtSlot) + 4));
  regs.Set(R::kGdtrBase, WordAt<uint64_t>(s, SegmentOffset(kQemuGdtSlot) + 16));
  regs.Set(R::kIdtrLimit, WordAt<uint32_t>(s, SegmentOffset(kQemuIdtSlot) + 4));
  regs.Set(R::kIdtrBase, WordAt<uint64_t>(s, SegmentOffset(kQemuIdtSlot) + 16));
}

}  // namespace

Result<RegisterSet> ParsePrstatus(std::span<const std::byte> desc, uint16_t machine) {
  if (machine == kElfMachineX86_64) {
    return ParseUserRegs<uint64_t>(desc, kPrstatus64RegsOffset, kUserRegs64Words, kUserRegs64);
  }
  if (machine == kElfMachineI386) {
    return ParseUserRegs<uint32_t>(desc, kPrstatus32RegsOffset, kUserRegs32Words, kUserRegs32);
  }
  return UnsupportedError("NT_PRSTATUS for ELF machine " + std::to_string(machine));
}

Result<RegisterSet> ParseQemuCpuState(std::span<const std::byte> desc) {
  ByteReader in(desc, "QEMU CPU state note");
  VMEMFS_ASSIGN_OR_RETURN(uint32_t version, in.Read<uint32_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint32_t size, in.Read<uint32_t>());
  if (version != kQemuCpuStateVersion) {
    return BadDataError("QEMU CPU state note: unsupported version " + std::to_string(version));
  }
  // Trust neither field alone: the state ends where both the note and its size field say so.
  const size_t usable = std::min<size_t>(size, desc.size());
  if (usable < kQemuStateMinSize) {
    return BadDataError("QEMU CPU state note too short: size field " + std::to_string(size) +
                        ", note " + std::to_string(desc.size()) + " bytes, need " +
                        std::to_string(kQemuStateMinSize));
  }
  RegisterSet regs;
  for (size_t i = 0; i < kQemuGprs.size(); ++i) {
    regs.Set(kQemuGprs[i], WordAt<uint64_t>(desc, kQemuGprOffset + 8 * i));
  }
  regs.Set(R::kRip, WordAt<uint64_t>(desc, kQemuRipOffset));
  regs.Set(R::kRflags, WordAt<uint64_t>(desc, kQemuRipOffset + 8));
  SetQemuSegments(desc, regs);
  regs.Set(R::kCr0, WordAt<uint64_t>(desc, kQemuCrOffset));
  regs.Set(R::kCr2, WordAt<uint64_t>(desc, kQemuCrOffset + 16));
  regs.Set(R::kCr3, WordAt<uint64_t>(desc, kQemuCrOffset + 24));
  regs.Set(R::kCr4, WordAt<uint64_t>(desc, kQemuCrOffset + 32));
  if (usable >= kQemuKernelGsBaseOffset + 8) {
    regs.Set(R::kKernelGsBase, WordAt<uint64_t>(desc, kQemuKernelGsBaseOffset));
  }
  return regs;
}

void MergeMissingRegisters(RegisterSet& dst, const RegisterSet& src) {
  for (size_t i = 0; i < kRegisterCount; ++i) {
    const R r = static_cast<R>(i);
    if (!dst.Has(r)) {
      if (auto v = src.Get(r)) dst.Set(r, *v);
    }
  }
}

}  // namespace vmemfs::drivers
