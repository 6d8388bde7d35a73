// A System.map (the `nm` listing the kernel build writes): one symbol per line,
//   ADDRESS TYPE NAME
// with ADDRESS in hex (the link-time address, before any KASLR slide), TYPE one nm letter.
// /proc/kallsyms text is accepted too (it has the same three fields, and module symbols with a
// fourth "[module]" field, which are skipped: modules load at addresses no file can know).
//
// The file is untrusted input: it is read whole up to kMaxSystemMapBytes, every line must be
// well formed, and errors name the file and line.
#ifndef VMEMFS_VMI_LINUX_SYSTEM_MAP_H_
#define VMEMFS_VMI_LINUX_SYSTEM_MAP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint64_t kMaxSystemMapBytes = 256ull << 20;

// Parses `text`; `name` (the file's path) prefixes every error: "NAME:LINE: why".
// Errors: kBadData (malformed line, too many symbols, no symbols at all).
Result<std::vector<Symbol>> ParseSystemMap(std::string_view text, std::string_view name);

// Reads and parses the file at `path`. Errors: kOs (cannot read), kBadData.
Result<std::vector<Symbol>> ReadSystemMap(const std::string& path);

// Reads a whole regular file of at most `max_bytes` (kOs, or kBadData when larger). Shared by
// the override file readers.
Result<std::string> ReadOverrideFile(const std::string& path, uint64_t max_bytes);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_SYSTEM_MAP_H_
