#include "fs/mount_options.h"

#include <cstddef>

namespace vmemfs::fs {
namespace {

// Splits "a,b=c" at commas. A value cannot contain a comma (mount(8) would split it too).
std::vector<std::string> SplitItems(const std::string& list) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) items.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

void ExpandList(const std::string& list, const std::function<bool(const std::string&)>& is_option,
                std::vector<std::string>& out) {
  for (const std::string& item : SplitItems(list)) {
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (!is_option(key)) {
      out.push_back("-o");
      out.push_back(item);
      continue;
    }
    out.push_back("--" + key);
    if (eq != std::string::npos) out.push_back(item.substr(eq + 1));
  }
}

}  // namespace

std::vector<std::string> ExpandMountOptions(
    const std::vector<std::string>& args, const std::function<bool(const std::string&)>& is_option) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {  // the rest are operands
      out.insert(out.end(), args.begin() + static_cast<ptrdiff_t>(i), args.end());
      break;
    }
    if (arg == "-o" && i + 1 < args.size()) {
      ExpandList(args[++i], is_option, out);
    } else if (arg.size() > 2 && arg.starts_with("-o")) {
      ExpandList(arg.substr(2), is_option, out);
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

}  // namespace vmemfs::fs
