#include "vmi/symbol_table.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <numeric>

namespace vmemfs::vmi {

SymbolTable::SymbolTable(std::vector<Symbol> symbols) : symbols_(std::move(symbols)) {
  // Callers bound the count far below this (kallsyms decoding: 2,000,000).
  assert(symbols_.size() < UINT32_MAX);
  const size_t n = symbols_.size();
  by_address_.resize(n);
  std::iota(by_address_.begin(), by_address_.end(), 0u);
  std::stable_sort(by_address_.begin(), by_address_.end(), [&](uint32_t a, uint32_t b) {
    return symbols_[a].address < symbols_[b].address;
  });

  sizes_.assign(n, 0);
  // Walk from the top so each symbol sees the nearest strictly higher address.
  for (size_t k = n, next_higher = n; k-- > 0;) {
    uint32_t i = by_address_[k];
    if (k + 1 < n && symbols_[by_address_[k + 1]].address != symbols_[i].address) {
      next_higher = k + 1;
    }
    if (next_higher < n) {
      sizes_[i] = std::min(symbols_[by_address_[next_higher]].address - symbols_[i].address,
                           kMaxSymbolSize);
    }
  }

  by_name_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) by_name_.emplace_back(symbols_[i].name, i);
  std::sort(by_name_.begin(), by_name_.end());
}

const Symbol* SymbolTable::Lookup(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), std::make_pair(name, 0u));
  if (it == by_name_.end() || it->first != name) return nullptr;
  return &symbols_[it->second];
}

std::vector<const Symbol*> SymbolTable::LookupAll(std::string_view name) const {
  std::vector<const Symbol*> out;
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), std::make_pair(name, 0u));
  for (; it != by_name_.end() && it->first == name; ++it) out.push_back(&symbols_[it->second]);
  return out;
}

const Symbol* SymbolTable::Containing(uint64_t address) const {
  auto it = std::upper_bound(by_address_.begin(), by_address_.end(), address,
                             [&](uint64_t a, uint32_t i) { return a < symbols_[i].address; });
  if (it == by_address_.begin()) return nullptr;
  return &symbols_[*(it - 1)];
}

std::string SymbolTable::KallsymsText() const {
  std::string out;
  out.reserve(symbols_.size() * 40);
  char head[24];
  for (const Symbol& s : symbols_) {
    if (s.name.empty()) continue;
    // The length from snprintf, not strlen: a garbage type byte may be NUL.
    int n = std::snprintf(head, sizeof(head), "%0*llx %c ", address_digits_,
                          static_cast<unsigned long long>(s.address), s.type);
    out.append(head, static_cast<size_t>(n));
    out += s.name;
    if (!s.module.empty()) {
      out += "\t[";
      out += s.module;
      out += ']';
    }
    out += '\n';
  }
  return out;
}

}  // namespace vmemfs::vmi
