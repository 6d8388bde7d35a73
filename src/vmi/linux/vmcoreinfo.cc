#include "vmi/linux/vmcoreinfo.h"

#include <charconv>
#include <system_error>

namespace vmemfs::vmi::linux_os {
namespace {

// The whole field must be a number in range: "12x", "", "+1", " 1" and overflow all fail.
template <typename T>
std::optional<T> ParseWhole(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsPrintable(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// "SYMBOL(name)" -> "name" when `key` has that prefix and a non-empty name.
std::optional<std::string_view> Argument(std::string_view key, std::string_view prefix) {
  if (!key.starts_with(prefix) || !key.ends_with(')')) return std::nullopt;
  std::string_view name = key.substr(prefix.size(), key.size() - prefix.size() - 1);
  if (name.empty()) return std::nullopt;
  return name;
}

Status BadValue(std::string_view key, std::string_view value, std::string_view want) {
  return BadDataError("VMCOREINFO: " + std::string(key) + "=" + std::string(value.substr(0, 40)) +
                      ": not " + std::string(want));
}

template <typename T>
Status Store(std::map<std::string, T, std::less<>>& table, std::string_view key,
             std::string_view name, std::string_view value, int base, std::string_view want) {
  auto v = ParseWhole<T>(value, base);
  if (!v) return BadValue(key, value, want);
  table.emplace(std::string(name), *v);
  return Status();
}

}  // namespace

Result<VmcoreInfo> VmcoreInfo::Parse(std::string_view text) {
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  if (text.size() > kMaxTextBytes) {
    return BadDataError("VMCOREINFO: " + std::to_string(text.size()) + " bytes, more than " +
                        std::to_string(kMaxTextBytes));
  }
  VmcoreInfo info;
  info.text_ = std::string(text);
  size_t lines = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (++lines > kMaxLines) {
      return BadDataError("VMCOREINFO: more than " + std::to_string(kMaxLines) + " lines");
    }
    if (line.empty()) continue;
    if (!IsPrintable(line)) {
      return BadDataError("VMCOREINFO: line " + std::to_string(lines) + " is not printable");
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return BadDataError("VMCOREINFO: line " + std::to_string(lines) + " is not KEY=value");
    }
    VMEMFS_TRY(info.AddLine(line.substr(0, eq), line.substr(eq + 1)));
  }
  if (info.os_release_.empty()) return BadDataError("VMCOREINFO: no OSRELEASE");
  return info;
}

Status VmcoreInfo::AddLine(std::string_view key, std::string_view value) {
  if (!raw_.emplace(std::string(key), std::string(value)).second) {
    return BadDataError("VMCOREINFO: " + std::string(key) + " appears twice");
  }
  if (key == "OSRELEASE") {
    if (value.empty() || value.size() > kMaxReleaseLength) {
      return BadValue(key, value, "a release of 1 to 64 characters");
    }
    os_release_ = std::string(value);
  } else if (key == "PAGESIZE") {
    auto v = ParseWhole<uint64_t>(value, 10);
    if (!v || *v == 0 || (*v & (*v - 1)) != 0) return BadValue(key, value, "a power of two");
    page_size_ = v;
  } else if (key == "KERNELOFFSET") {
    kernel_offset_ = ParseWhole<uint64_t>(value, 16);
    if (!kernel_offset_) return BadValue(key, value, "hex");
  } else if (key == "CRASHTIME") {
    crash_time_ = ParseWhole<int64_t>(value, 10);
    if (!crash_time_) return BadValue(key, value, "a decimal number");
  } else if (key == "BUILD-ID") {
    if (value.empty() || value.size() > 128 ||
        value.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
      return BadValue(key, value, "hex digits");
    }
    build_id_ = std::string(value);
  } else if (auto name = Argument(key, "SYMBOL(")) {
    return Store(symbols_, key, *name, value, 16, "hex");
  } else if (auto name = Argument(key, "NUMBER(")) {
    return Store(numbers_, key, *name, value, 10, "a signed decimal number");
  } else if (auto name = Argument(key, "OFFSET(")) {
    return Store(offsets_, key, *name, value, 10, "a decimal number");
  } else if (auto name = Argument(key, "SIZE(")) {
    return Store(sizes_, key, *name, value, 10, "a decimal number");
  } else if (auto name = Argument(key, "LENGTH(")) {
    return Store(lengths_, key, *name, value, 10, "a decimal number");
  }
  return Status();
}

std::optional<std::string_view> VmcoreInfo::Get(std::string_view key) const {
  auto it = raw_.find(key);
  if (it == raw_.end()) return std::nullopt;
  return std::string_view(it->second);
}

}  // namespace vmemfs::vmi::linux_os
