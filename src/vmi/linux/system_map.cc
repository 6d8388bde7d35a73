#include "vmi/linux/system_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <charconv>

#include "vmi/linux/kallsyms.h"

namespace vmemfs::vmi::linux_os {
namespace {

// Splits off the next field separated by spaces or tabs; empty when none is left.
std::string_view NextField(std::string_view& line) {
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    line = {};
    return {};
  }
  size_t end = line.find_first_of(" \t", start);
  std::string_view field = line.substr(start, end == std::string_view::npos ? end : end - start);
  line = end == std::string_view::npos ? std::string_view() : line.substr(end);
  return field;
}

bool ParseHex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && end == s.data() + s.size();
}

bool PrintableName(std::string_view s) {
  for (char c : s) {
    if (!std::isgraph(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty() && s.size() <= kMaxNameLength;
}

// One line into *sym; false with *why set when malformed; true with an empty name for a module
// symbol (skipped).
bool ParseLine(std::string_view line, Symbol* sym, std::string* why) {
  std::string_view address = NextField(line);
  std::string_view type = NextField(line);
  std::string_view name = NextField(line);
  std::string_view module = NextField(line);
  if (!ParseHex(address, &sym->address)) {
    *why = "bad address '" + std::string(address.substr(0, 32)) + "'";
    return false;
  }
  if (type.size() != 1 || !(std::isalpha(static_cast<unsigned char>(type[0])) || type[0] == '?')) {
    *why = "bad symbol type '" + std::string(type.substr(0, 8)) + "'";
    return false;
  }
  if (!PrintableName(name)) {
    *why = name.empty() ? "no symbol name" : "bad symbol name";
    return false;
  }
  if (!module.empty() && (module.size() < 3 || module.front() != '[' || module.back() != ']' ||
                          !NextField(line).empty())) {
    *why = "unexpected text after the symbol name";
    return false;
  }
  sym->type = type[0];
  sym->name = module.empty() ? std::string(name) : std::string();
  return true;
}

}  // namespace

Result<std::vector<Symbol>> ParseSystemMap(std::string_view text, std::string_view name) {
  std::vector<Symbol> symbols;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    Symbol sym;
    std::string why;
    if (!ParseLine(line, &sym, &why)) {
      return BadDataError(std::string(name) + ":" + std::to_string(line_no) + ": " + why);
    }
    if (sym.name.empty()) continue;  // a module's symbol
    if (symbols.size() >= kMaxKallsyms) {
      return BadDataError(std::string(name) + ":" + std::to_string(line_no) + ": more than " +
                          std::to_string(kMaxKallsyms) + " symbols");
    }
    symbols.push_back(std::move(sym));
  }
  if (symbols.empty()) return BadDataError(std::string(name) + ": no symbols (not a System.map)");
  return symbols;
}

Result<std::vector<Symbol>> ReadSystemMap(const std::string& path) {
  VMEMFS_ASSIGN_OR_RETURN(std::string text, ReadOverrideFile(path, kMaxSystemMapBytes));
  return ParseSystemMap(text, path);
}

Result<std::string> ReadOverrideFile(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: a FIFO given by mistake is refused below instead of waited on.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return OsError(path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return InvalidArgumentError(path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return BadDataError(path + ": larger than " + std::to_string(max_bytes >> 20) + " MiB");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = n < 0 ? OsError(path) : BadDataError(path + ": shrank while read");
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return text;
}

}  // namespace vmemfs::vmi::linux_os
