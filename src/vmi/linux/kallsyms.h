// The core kernel's symbol table, decoded from the compressed kallsyms tables in its memory
// (the same data /proc/kallsyms prints from), located through VMCOREINFO.
//
// Format (scripts/kallsyms.c, kernel/kallsyms.c, Linux 4.6 to 6.x):
//  * kallsyms_num_syms: u32 count.
//  * kallsyms_names: per symbol, a length then that many token bytes. The length is one byte,
//    or two when its top bit is set ("big" symbols, 6.1+): (b0 & 0x7f) | b1 << 7.
//  * kallsyms_token_index: 256 u16 offsets into kallsyms_token_table (NUL-terminated tokens).
//    A name is the concatenation of its tokens; its first character is the type letter.
//  * Addresses (CONFIG_KALLSYMS_BASE_RELATIVE): s32 kallsyms_offsets[] and u64
//    kallsyms_relative_base (unsigned long: 4 bytes on i386). Without ABSOLUTE_PERCPU: base + (u32)offset. With it (x86_64
//    SMP): offset >= 0 is an absolute value (per-cpu symbols), else base - 1 - offset.
//    Otherwise unsigned long kallsyms_addresses[].
// The offsets rule is chosen from the data (negative offsets exist only with ABSOLUTE_PERCPU)
// and confirmed by SYMBOL(_stext) when given; the other rule is tried if it disagrees.
//
// The guest is hostile: the count, every length and every table size is bounded, tables are
// read in large chunks, and a name that outgrows kMaxNameLength is cut.
#ifndef VMEMFS_VMI_LINUX_KALLSYMS_H_
#define VMEMFS_VMI_LINUX_KALLSYMS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/symbol_table.h"
#include "vmi/linux/vmcoreinfo.h"

namespace vmemfs::vmi::linux_os {

struct KallsymsAddresses {
  uint64_t num_syms = 0;
  uint64_t names = 0;
  uint64_t token_table = 0;
  uint64_t token_index = 0;
  std::optional<uint64_t> offsets;  // with relative_base: CONFIG_KALLSYMS_BASE_RELATIVE
  std::optional<uint64_t> relative_base;
  std::optional<uint64_t> addresses;  // otherwise
  std::optional<uint64_t> stext;      // SYMBOL(_stext), to confirm the address rule
  // The other symbols VMCOREINFO names in the kernel image, to check the decoded names by
  // (kallsyms_check.h).
  std::vector<std::pair<std::string, uint64_t>> known;
  // Width of kallsyms_relative_base and of each kallsyms_addresses entry (unsigned long):
  // 8 on x86_64, 4 on i386 (KernelLayout::pointer_size).
  uint64_t pointer_size = 8;

  // From SYMBOL(kallsyms_*) (Linux 6.0+ exports them). kNotFound naming what is missing.
  // Older kernels: a fallback would have to find the tables by shape (token_index: 256
  // ascending u16 starting at 0, right after a token_table of 256 NUL-terminated strings) —
  // not built.
  static Result<KallsymsAddresses> FromVmcoreInfo(const VmcoreInfo& info);
};

inline constexpr uint32_t kMaxKallsyms = 2'000'000;
inline constexpr size_t kMaxNameLength = 1024;                // KSYM_NAME_LEN is 512 in 6.1
inline constexpr uint64_t kMaxNamesBytes = 64ull << 20;       // compressed names, all symbols
inline constexpr uint64_t kMaxNameBytesTotal = 256ull << 20;  // decoded names, all symbols

// Reads kernel virtual memory: exactly out.size() bytes, or an error (kFault at a hole).
using KernelReader = std::function<Status(uint64_t va, std::span<std::byte> out)>;

// How much of the table could be trusted.
struct KallsymsReport {
  uint32_t count = 0;    // kallsyms_num_syms
  uint32_t kept = 0;     // names that decoded and passed the checks (a prefix, by address)
  bool markers = false;  // the names were checked against kallsyms_markers
  std::string damage;    // why the others were dropped; empty when none were
};

// Decodes the tables through `read` (tests and fuzzers pass plain bytes), and keeps only the
// names that pass kallsyms_check.h: a damaged name table gives fewer symbols (`report` says
// how many and why), never garbage names. Errors: kBadData for implausible tables and for a
// name table none of which can be trusted, the reader's error when a table cannot be read.
Result<SymbolTable> DecodeKallsyms(const KernelReader& read, const KallsymsAddresses& at,
                                   KallsymsReport* report = nullptr);

// Through the guest's kernel page tables.
Result<SymbolTable> ReadKallsyms(KernelMemory& memory, const KallsymsAddresses& at,
                                 KallsymsReport* report = nullptr);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KALLSYMS_H_
