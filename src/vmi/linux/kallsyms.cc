#include "vmi/linux/kallsyms.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/checked.h"
#include "vmi/linux/kallsyms_check.h"
#include "vmi/linux/kernel_image.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kNamesChunk = 256 * 1024;
constexpr size_t kMaxTokenLength = 512;

// The bytes at [va, va + len) up to the first page that cannot be read: tables end where
// their mapping may end, so reading a little past them must not fail the whole read.
Result<std::vector<std::byte>> ReadUpTo(const KernelReader& read, uint64_t va, size_t len) {
  if (!CheckedAdd(va, len)) len = static_cast<size_t>(UINT64_MAX - va);
  std::vector<std::byte> buf(len);
  Status whole = read(va, buf);
  if (whole.ok()) return buf;
  if (whole.code() != ErrorCode::kFault) return whole;
  size_t got = 0;
  while (got < len) {
    size_t n = std::min(len - got, kPage - static_cast<size_t>((va + got) % kPage));
    Status s = read(va + got, std::span(buf).subspan(got, n));
    if (!s.ok()) {
      if (s.code() != ErrorCode::kFault) return s;
      break;
    }
    got += n;
  }
  buf.resize(got);
  return buf;
}

struct Tokens {
  std::vector<std::byte> bytes;
  std::array<std::string_view, 256> token;
};

Result<Tokens> ReadTokens(const KernelReader& read, const KallsymsAddresses& at) {
  std::array<uint16_t, 256> index;
  VMEMFS_TRY(read(at.token_index, std::as_writable_bytes(std::span(index)))
                 .WithContext("kallsyms_token_index"));
  uint16_t max_index = *std::max_element(index.begin(), index.end());
  Tokens t;
  VMEMFS_ASSIGN_OR_RETURN(t.bytes, ReadUpTo(read, at.token_table, max_index + kMaxTokenLength + 1));
  const char* base = reinterpret_cast<const char*>(t.bytes.data());
  for (size_t i = 0; i < 256; ++i) {
    size_t off = index[i];
    if (off >= t.bytes.size()) {
      return BadDataError("kallsyms token " + std::to_string(i) + " is outside the table");
    }
    size_t room = std::min(t.bytes.size() - off, kMaxTokenLength + 1);
    const void* nul = std::memchr(base + off, 0, room);
    if (nul == nullptr) {
      return BadDataError("kallsyms token " + std::to_string(i) + " is not terminated");
    }
    t.token[i] = std::string_view(base + off, static_cast<const char*>(nul) - (base + off));
  }
  return t;
}

// kallsyms_names read forward in large chunks.
class NameStream {
 public:
  NameStream(const KernelReader& read, uint64_t va) : read_(read), va_(va) {}

  // Makes n bytes available at data(); kBadData/kFault when the table ends first.
  Status Ensure(size_t n) {
    if (buf_.size() - pos_ >= n) return Status();
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
    while (buf_.size() < n) {
      if (consumed_ >= kMaxNamesBytes) return BadDataError("kallsyms_names: larger than 64 MiB");
      VMEMFS_ASSIGN_OR_RETURN(auto more, ReadUpTo(read_, va_ + consumed_, kNamesChunk));
      if (more.empty()) return FaultError(va_ + consumed_, "kallsyms_names ends early");
      consumed_ += more.size();
      buf_.insert(buf_.end(), more.begin(), more.end());
    }
    return Status();
  }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(buf_.data()) + pos_; }
  void Advance(size_t n) { pos_ += n; }
  // Bytes of the table decoded so far.
  uint64_t offset() const { return consumed_ - (buf_.size() - pos_); }

 private:
  const KernelReader& read_;
  uint64_t va_;
  uint64_t consumed_ = 0;  // bytes fetched from the guest so far
  std::vector<std::byte> buf_;
  size_t pos_ = 0;
};

// One name: its type letter and the rest, expanded from tokens; cut at kMaxNameLength.
Status DecodeName(NameStream& in, const Tokens& tokens, Symbol& out, uint64_t& total) {
  VMEMFS_TRY(in.Ensure(1));
  size_t len = in.data()[0];
  size_t header = 1;
  if (len & 0x80) {  // a "big" symbol: a second length byte
    VMEMFS_TRY(in.Ensure(2));
    len = (len & 0x7f) | (size_t{in.data()[1]} << 7);
    header = 2;
  }
  VMEMFS_TRY(in.Ensure(header + len));
  char name[kMaxNameLength];
  size_t n = 0;
  for (size_t i = 0; i < len && n < kMaxNameLength; ++i) {
    std::string_view tok = tokens.token[in.data()[header + i]];
    size_t take = std::min(tok.size(), kMaxNameLength - n);
    std::memcpy(name + n, tok.data(), take);
    n += take;
  }
  in.Advance(header + len);
  total += n;
  if (total > kMaxNameBytesTotal) return BadDataError("kallsyms names: more than 256 MiB decoded");
  out.type = n > 0 ? name[0] : '\0';
  out.name.assign(n > 0 ? name + 1 : name, n > 0 ? n - 1 : 0);
  return Status();
}

enum class AddressRule { kRelative, kAbsolutePercpu };

uint64_t Apply(AddressRule rule, uint64_t base, int32_t offset) {
  if (rule == AddressRule::kRelative) return base + static_cast<uint32_t>(offset);
  if (offset >= 0) return static_cast<uint64_t>(offset);
  return base - 1 - static_cast<uint64_t>(static_cast<int64_t>(offset));
}

// Fills in addresses; confirms the rule with _stext when both it and the symbol are known.
Status FillAddresses(const KernelReader& read, const KallsymsAddresses& at,
                     std::vector<Symbol>& symbols) {
  const size_t n = symbols.size();
  if (at.pointer_size != 4 && at.pointer_size != 8) {
    return InvalidArgumentError("pointer size " + std::to_string(at.pointer_size));
  }
  if (at.addresses) {
    // Little endian: entry i is bytes [i * size, (i + 1) * size), zero-extended.
    std::vector<std::byte> raw(n * at.pointer_size);
    VMEMFS_TRY(read(*at.addresses, raw).WithContext("kallsyms_addresses"));
    for (size_t i = 0; i < n; ++i) {
      uint64_t a = 0;
      std::memcpy(&a, raw.data() + i * at.pointer_size, at.pointer_size);
      symbols[i].address = a;
    }
    return Status();
  }
  if (!at.offsets || !at.relative_base) return InvalidArgumentError("no kallsyms address table");
  uint64_t base = 0;
  VMEMFS_TRY(read(*at.relative_base,
                  std::as_writable_bytes(std::span(&base, 1)).first(at.pointer_size))
                 .WithContext("kallsyms_relative_base"));
  std::vector<int32_t> off(n);
  VMEMFS_TRY(
      read(*at.offsets, std::as_writable_bytes(std::span(off))).WithContext("kallsyms_offsets"));

  bool negative = std::any_of(off.begin(), off.end(), [](int32_t o) { return o < 0; });
  AddressRule rules[2] = {AddressRule::kAbsolutePercpu, AddressRule::kRelative};
  if (!negative) std::swap(rules[0], rules[1]);
  size_t stext = n;
  for (size_t i = 0; i < n && at.stext; ++i) {
    if (symbols[i].name == "_stext") {
      stext = i;
      break;
    }
  }
  for (AddressRule rule : rules) {
    if (stext < n && Apply(rule, base, off[stext]) != *at.stext) continue;
    for (size_t i = 0; i < n; ++i) symbols[i].address = Apply(rule, base, off[i]);
    return Status();
  }
  return BadDataError("kallsyms: no address rule puts _stext at SYMBOL(_stext)");
}

}  // namespace

Result<KallsymsAddresses> KallsymsAddresses::FromVmcoreInfo(const VmcoreInfo& info) {
  KallsymsAddresses at;
  struct Need {
    const char* name;
    uint64_t* into;
  } needs[] = {{"kallsyms_num_syms", &at.num_syms},
               {"kallsyms_names", &at.names},
               {"kallsyms_token_table", &at.token_table},
               {"kallsyms_token_index", &at.token_index}};
  for (const Need& need : needs) {
    auto v = info.Symbol(need.name);
    if (!v) return NotFoundError(std::string("VMCOREINFO has no SYMBOL(") + need.name + ")");
    *need.into = *v;
  }
  at.offsets = info.Symbol("kallsyms_offsets");
  at.relative_base = info.Symbol("kallsyms_relative_base");
  at.addresses = info.Symbol("kallsyms_addresses");
  at.stext = info.Symbol("_stext");
  for (const auto& [name, address] : info.symbols()) {
    // The kallsyms tables themselves are not in kallsyms; values outside the image (the
    // mem_section pointer) are no symbol addresses.
    if (name.starts_with("kallsyms_") || address < kKernelImageRegionStart) continue;
    at.known.emplace_back(name, address);
  }
  if (!(at.offsets && at.relative_base) && !at.addresses) {
    return NotFoundError(
        "VMCOREINFO has neither kallsyms_offsets + kallsyms_relative_base nor "
        "kallsyms_addresses");
  }
  return at;
}

Result<SymbolTable> DecodeKallsyms(const KernelReader& read, const KallsymsAddresses& at,
                                   KallsymsReport* report) {
  uint32_t count;
  VMEMFS_TRY(read(at.num_syms, std::as_writable_bytes(std::span(&count, 1)))
                 .WithContext("kallsyms_num_syms"));
  if (count == 0 || count > kMaxKallsyms) {
    return BadDataError("kallsyms_num_syms = " + std::to_string(count) + ", not 1.." +
                        std::to_string(kMaxKallsyms));
  }
  VMEMFS_ASSIGN_OR_RETURN(Tokens tokens, ReadTokens(read, at));
  // Grown as names decode, so a garbage count alone cannot make a huge allocation.
  std::vector<Symbol> symbols;
  symbols.reserve(std::min<uint32_t>(count, 1u << 17));
  NameStream names(read, at.names);
  DecodedNames decoded;
  decoded.count = count;
  Status stopped;  // why decoding ended before `count` names, if it did
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (i % kKallsymsMarkerStride == 0) decoded.block_offsets.push_back(names.offset());
    Symbol s;
    stopped = DecodeName(names, tokens, s, total).WithContext("kallsyms_names");
    if (!stopped.ok()) break;
    symbols.push_back(std::move(s));
  }
  decoded.end = names.offset();
  decoded.complete = stopped.ok();
  if (symbols.empty()) return stopped;
  VMEMFS_TRY(FillAddresses(read, at, symbols));
  NamesVerdict verdict = CheckKallsymsNames(read, at, decoded, symbols);
  // Without markers nothing tells a good prefix from a bad one.
  if (!stopped.ok() && !verdict.markers) return stopped;
  if (!stopped.ok() && verdict.damage.empty()) verdict.damage = stopped.message();
  symbols.resize(verdict.keep);
  if (report != nullptr) {
    *report = {count, static_cast<uint32_t>(verdict.keep), verdict.markers, verdict.damage};
  }
  if (symbols.empty()) return BadDataError("kallsyms names do not decode: " + verdict.damage);
  return SymbolTable(std::move(symbols));
}

Result<SymbolTable> ReadKallsyms(KernelMemory& memory, const KallsymsAddresses& at,
                                 KallsymsReport* report) {
  return DecodeKallsyms(
      [&memory](uint64_t va, std::span<std::byte> out) { return memory.Read(va, out); }, at,
      report);
}

}  // namespace vmemfs::vmi::linux_os
