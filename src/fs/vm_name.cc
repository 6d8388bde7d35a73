#include "fs/vm_name.h"

#include <string>

namespace vmemfs::fs {

Status CheckVmName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgumentError("'" + std::string(name) + "' cannot name a directory");
  }
  if (name.size() > 255) return InvalidArgumentError("a name longer than 255 bytes");
  for (char c : name) {
    if (c == '/') return InvalidArgumentError("a name with '/'");
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return InvalidArgumentError("a name with a control character (newline, tab, ...)");
    }
  }
  return Status();
}

}  // namespace vmemfs::fs
