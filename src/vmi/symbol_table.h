// An OS kernel's symbols as Linux's /proc/kallsyms shows them: address, type letter, name, module.
//
// Kept in kallsyms order (the order the kernel's table and /proc/kallsyms list them), with an
// address index for "which symbol is here" and "how big is it", and a name index (names
// repeat: static functions of different files).
#ifndef VMEMFS_VMI_SYMBOL_TABLE_H_
#define VMEMFS_VMI_SYMBOL_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vmemfs::vmi {

struct Symbol {
  uint64_t address;
  char type;  // as /proc/kallsyms prints it: upper case global, lower case local
  std::string name;
  std::string module;  // empty for the core kernel
  bool operator==(const Symbol&) const = default;
};

// Thread safety: immutable after construction; const methods may be called concurrently.
class SymbolTable {
 public:
  // Sizes are the distance to the next higher symbol address, capped here: a larger gap means
  // the end of a section, not a 16 MiB function.
  static constexpr uint64_t kMaxSymbolSize = 16ull << 20;

  SymbolTable() = default;
  // `symbols` in kallsyms order.
  explicit SymbolTable(std::vector<Symbol> symbols);
  // Move only: the name index points into the symbols' strings.
  SymbolTable(SymbolTable&&) noexcept = default;
  SymbolTable& operator=(SymbolTable&&) noexcept = default;
  SymbolTable(const SymbolTable&) = delete;
  SymbolTable& operator=(const SymbolTable&) = delete;

  size_t size() const { return symbols_.size(); }
  bool empty() const { return symbols_.empty(); }
  // In kallsyms order.
  std::span<const Symbol> symbols() const { return symbols_; }
  const Symbol& operator[](size_t i) const { return symbols_[i]; }

  // Indices into symbols(), sorted by address (stable: equal addresses keep kallsyms order).
  std::span<const uint32_t> by_address() const { return by_address_; }
  // Bytes from symbols()[i] to the next higher address, at most kMaxSymbolSize; 0 for the
  // symbol(s) at the highest address.
  uint64_t SizeOf(size_t i) const { return sizes_[i]; }

  // The first symbol of that name in kallsyms order, or nullptr.
  const Symbol* Lookup(std::string_view name) const;
  // Every symbol of that name, in kallsyms order.
  std::vector<const Symbol*> LookupAll(std::string_view name) const;
  // The symbol with the highest address <= `address` (the last of equals in kallsyms order),
  // or nullptr when `address` is below every symbol. Does not check the symbol's size.
  const Symbol* Containing(uint64_t address) const;

  // Exactly what /proc/kallsyms prints (`%px %c %s\n`, `\t[module]` before the newline for
  // module symbols), in kallsyms order; symbols with empty names are skipped as the kernel does.
  // %px is as wide as the kernel's pointers: 16 hex digits, 8 on a 32-bit kernel.
  std::string KallsymsText() const;
  // REQUIRES: 8 or 16. Default 16.
  void set_address_digits(int digits) { address_digits_ = digits; }

 private:
  std::vector<Symbol> symbols_;
  std::vector<uint32_t> by_address_;
  std::vector<uint64_t> sizes_;                                 // by kallsyms index
  int address_digits_ = 16;
  std::vector<std::pair<std::string_view, uint32_t>> by_name_;  // sorted by (name, index)
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_SYMBOL_TABLE_H_
