#include "shell.h"

#include <sys/wait.h>

#include <cstdio>
#include <regex>
#include <sstream>

namespace vmemfs::testing {

ShellResult Shell(const std::string& command) {
  std::string full = "(" + command + ") 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string SourceDir() { return VMEMFS_SOURCE_DIR; }
std::string BuildDir() { return VMEMFS_BUILD_DIR; }

std::set<std::string> HelpOptions(const std::string& help) {
  std::set<std::string> names;
  std::istringstream in(help);
  std::string line;
  bool in_options = false;
  static const std::regex kName(R"(^\s+(-[^\s]+))");
  while (std::getline(in, line)) {
    if (line.starts_with("Options:")) in_options = true;
    if (!in_options) continue;
    if (line.empty()) break;
    std::smatch m;
    if (!std::regex_search(line, m, kName)) continue;
    std::istringstream list(m[1].str());
    for (std::string name; std::getline(list, name, ',');) names.insert(name);
  }
  return names;
}

std::set<std::string> ManOptions(const std::string& roff) {
  std::set<std::string> names;
  std::istringstream in(roff);
  std::string line;
  bool in_options = false, heading = false;
  static const std::regex kName(R"(\\-(\\-)?[A-Za-z][A-Za-z-]*)");
  while (std::getline(in, line)) {
    if (line.starts_with(".SH")) in_options = line == ".SH OPTIONS";
    if (!in_options) continue;
    if (heading) {  // the line after .TP names the option
      for (std::sregex_iterator it(line.begin(), line.end(), kName), end; it != end; ++it) {
        std::string n = std::regex_replace(it->str(), std::regex(R"(\\-)"), "-");
        names.insert(n);
      }
    }
    heading = line == ".TP";
  }
  return names;
}

std::vector<std::string> HelpExamples(const std::string& help) {
  std::vector<std::string> commands;
  size_t at = help.rfind("\nExamples:\n");
  if (at == std::string::npos) return commands;
  std::istringstream in(help.substr(at + 11));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("  vmemfs ")) commands.push_back(line.substr(2));
  }
  return commands;
}

}  // namespace vmemfs::testing
