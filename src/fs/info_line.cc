#include "fs/info_line.h"

#include <cstdio>

namespace vmemfs::fs {

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\x%02x", u);
      out += esc;
    } else {
      out += c;
    }
  }
  return out;
}

std::string InfoLine(const Fact& fact) {
  std::string line = OneLine(fact.key) + ": " + OneLine(fact.value);
  if (!fact.how.empty()) line += " # " + OneLine(fact.how);
  return line + "\n";
}

}  // namespace vmemfs::fs
