// A Volatility 3 ISF ("intermediate symbol format") JSON file, as dwarf2json writes it for a
// kernel: `symbols` {name: {address}}, `user_types` {name: {kind, size, fields: {name:
// {offset, type}}}}, `base_types` {name: {size, ...}}, `enums` {name: {size, constants}},
// `metadata` {format, ...}. It gives the kernel's symbols (link-time addresses, before the
// KASLR slide) and, through IsfKernelTypes, struct layouts for kernels without BTF.
//
// Type descriptors ({kind: base|pointer|struct|union|class|enum|array|bitfield|function, ...})
// are followed to size members; anonymous struct/union members (fields whose names begin with
// "unnamed_") are searched like BTF's nameless ones. Compressed (.json.xz) files are not read.
//
// The file is untrusted input: its size, nesting depth, symbol count and every number are
// bounded, its shape is checked when loaded, and errors name the file (and line for syntax).
#ifndef VMEMFS_VMI_LINUX_ISF_H_
#define VMEMFS_VMI_LINUX_ISF_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint64_t kMaxIsfBytes = 512ull << 20;
inline constexpr int kMaxIsfNesting = 64;  // JSON depth; real ISF files nest about 8 deep

struct Isf {
  // Sorted by address. Type letters are guessed from the ISF type: 'T' for functions, 'D' for
  // other typed symbols, '?' when the ISF has no type (ISF does not keep nm's letters).
  std::vector<Symbol> symbols;
  std::unique_ptr<KernelTypes> types;  // never null
};

// Parses ISF JSON; `name` (the file's path) prefixes every error.
// Errors: kBadData (syntax with its line, shape naming the offending entry, limits).
Result<Isf> ParseIsf(std::string_view json, std::string_view name);

// Reads and parses the file at `path`. Errors: kOs, kInvalidArgument, kBadData.
Result<Isf> ReadIsf(const std::string& path);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_ISF_H_
