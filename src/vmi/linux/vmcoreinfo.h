// VMCOREINFO: the `KEY=value` text the Linux kernel prepares about itself for crash dumps
// (kernel/crash_core.c). It names the kernel's release, its KASLR offset, the page-table root
// and the kallsyms tables, so a guest can be understood from memory alone.
//
// Parsing is strict because the text comes from a hostile guest or from a scan that may hit
// look-alikes (the kernel image holds the printf formats "OSRELEASE=%s" ...): every line must be
// printable `KEY=value`, every known key's value must be a whole well-formed number, and
// nothing outside the bounds below is accepted.
#ifndef VMEMFS_VMI_LINUX_VMCOREINFO_H_
#define VMEMFS_VMI_LINUX_VMCOREINFO_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs::vmi::linux_os {

// Thread safety: immutable after Parse; const methods may be called concurrently.
class VmcoreInfo {
 public:
  static constexpr size_t kMaxTextBytes = 64 * 1024;
  static constexpr size_t kMaxLines = 4096;
  static constexpr size_t kMaxReleaseLength = 64;  // __NEW_UTS_LEN

  // Parses the note's text. Trailing NUL bytes (note padding) are ignored; empty lines are
  // skipped. Requires a non-empty OSRELEASE. Errors: kBadData naming the line at fault.
  // Rules: OSRELEASE printable, PAGESIZE decimal power of two, KERNELOFFSET hex,
  // SYMBOL(x) hex, NUMBER(x) signed decimal, OFFSET/SIZE/LENGTH(x) unsigned decimal,
  // CRASHTIME signed decimal, BUILD-ID hex digits; other keys are kept as text. A key may
  // appear once. Hex is without "0x", as the kernel prints it (%lx).
  static Result<VmcoreInfo> Parse(std::string_view text);

  // The text as given (without trailing NULs).
  const std::string& text() const { return text_; }
  const std::string& os_release() const { return os_release_; }
  std::optional<uint64_t> page_size() const { return page_size_; }
  std::optional<uint64_t> kernel_offset() const { return kernel_offset_; }  // KASLR slide
  std::optional<int64_t> crash_time() const { return crash_time_; }
  const std::string& build_id() const { return build_id_; }  // hex, or empty

  std::optional<uint64_t> Symbol(std::string_view name) const { return Find(symbols_, name); }
  // Every SYMBOL(x), by name.
  const std::map<std::string, uint64_t, std::less<>>& symbols() const { return symbols_; }
  std::optional<int64_t> Number(std::string_view name) const { return Find(numbers_, name); }
  std::optional<uint64_t> Offset(std::string_view name) const { return Find(offsets_, name); }
  std::optional<uint64_t> Size(std::string_view name) const { return Find(sizes_, name); }
  std::optional<uint64_t> Length(std::string_view name) const { return Find(lengths_, name); }
  // The raw value of any key, e.g. Get("SYMBOL(_stext)") or an unknown key.
  std::optional<std::string_view> Get(std::string_view key) const;

 private:
  template <typename T>
  using Table = std::map<std::string, T, std::less<>>;

  template <typename T>
  static std::optional<T> Find(const Table<T>& table, std::string_view name) {
    auto it = table.find(name);
    if (it == table.end()) return std::nullopt;
    return it->second;
  }
  Status AddLine(std::string_view key, std::string_view value);

  std::string text_;
  std::string os_release_;
  std::optional<uint64_t> page_size_;
  std::optional<uint64_t> kernel_offset_;
  std::optional<int64_t> crash_time_;
  std::string build_id_;
  Table<std::string> raw_;
  Table<uint64_t> symbols_;
  Table<int64_t> numbers_;
  Table<uint64_t> offsets_;
  Table<uint64_t> sizes_;
  Table<uint64_t> lengths_;
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMCOREINFO_H_
