#include "truth/guest_truth.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace vmemfs::testing {

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
    } else if (s[i + 1] == 'x' && i + 3 < s.size()) {
      out += char(std::stoi(s.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      char c = s[++i];
      out += c == 't' ? '\t' : c == 'n' ? '\n' : c;
    }
  }
  return out;
}

namespace {

// The lines of a truth .tsv file after its header, split at tabs.
std::vector<std::vector<std::string>> ReadTsv(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    rows.push_back(std::move(f));
  }
  return rows;
}

}  // namespace

std::map<int, PsRow> ReadTruthPs(const std::string& dir) {
  std::map<int, PsRow> rows;
  for (auto& f : ReadTsv(dir + "/truth/ps.tsv")) {
    if (f.size() < 8) continue;
    f.resize(9);  // an empty cmdline (kernel threads) ends the line early
    PsRow r{std::stoi(f[0]), std::stoi(f[1]), std::stoi(f[2]), f[3],          f[4],
            f[5],            f[6],            Unescape(f[7]),  Unescape(f[8])};
    rows[r.pid] = r;
  }
  return rows;
}

std::map<int, TruthTask> ReadTruthTasks(const std::string& dir) {
  std::map<int, TruthTask> rows;
  for (const auto& f : ReadTsv(dir + "/truth/tasks.tsv")) {
    if (f.size() != 5) continue;
    TruthTask t{f[1], f[2], f[3], {}};
    std::istringstream tids(f[4]);
    for (int tid; tids >> tid;) t.tids.push_back(tid);
    rows[std::stoi(f[0])] = t;
  }
  return rows;
}

std::string ReadTruthSymbolText(const std::string& dir, const std::string& symbol) {
  std::ifstream in(dir + "/truth/kallsyms.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string addr, type, name;
    if (ls >> addr >> type >> name && name == symbol) return addr;
  }
  return "";
}

uint64_t ReadTruthSymbol(const std::string& dir, const std::string& symbol) {
  std::string text = ReadTruthSymbolText(dir, symbol);
  return text.empty() ? 0 : std::stoull(text, nullptr, 16);
}

std::string ExeFromTruthMaps(const std::string& maps_text) {
  std::istringstream first(maps_text.substr(0, maps_text.find('\n')));
  std::string range, perms, offset, dev, inode, path;
  first >> range >> perms >> offset >> dev >> inode;
  std::getline(first >> std::ws, path);
  return path;
}

}  // namespace vmemfs::testing
