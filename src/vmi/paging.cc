#include "vmi/paging.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "base/checked.h"

namespace vmemfs::vmi {
namespace {

// Entries are little-endian guest data copied with memcpy; a big-endian host would need swaps.
static_assert(std::endian::native == std::endian::little);

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kPageSize = 1ull << 7;
constexpr uint64_t kNoExecute = 1ull << 63;
// Physical-address bits 12..51 of an 8-byte entry (MAXPHYADDR taken as 52).
constexpr uint64_t kAddressMask64 = 0x000ffffffffff000ull;
// Physical-address bits 12..31 of a 4-byte entry.
constexpr uint64_t kAddressMask32 = 0xfffff000ull;

// Bound on entries visited by one NextMapping call. A real kernel's whole upper half needs far
// fewer (its present upper-level entries number in the thousands and each PT adds 512); a
// hostile guest whose every table is full of present non-leaf entries would otherwise make a
// call walk 2^36 entries.
constexpr uint64_t kScanBudget = 1ull << 22;

// The largest table (512 x 8 or 1024 x 4 bytes).
constexpr size_t kMaxTableBytes = 4096;

struct LevelSpec {
  uint8_t shift;       // VA bits below this level's index
  uint8_t index_bits;  // log2(entries per table)
  bool large_ok;       // PS=1 maps a page here
  bool has_access;     // R/W, U/S and XD are defined here (not in PAE PDPTEs)
};

struct ModeSpec {
  uint8_t entry_size;
  uint8_t levels;
  uint8_t va_bits;
  std::array<LevelSpec, 5> level;  // root first
};

// The one description the walker runs on; index with static_cast<int>(PagingMode).
constexpr std::array<ModeSpec, 4> kModes = {{
    {4, 2, 32, {{{22, 10, true, true}, {12, 10, false, true}}}},
    {8, 3, 32, {{{30, 2, false, false}, {21, 9, true, true}, {12, 9, false, true}}}},
    {8,
     4,
     48,
     {{{39, 9, false, true}, {30, 9, true, true}, {21, 9, true, true}, {12, 9, false, true}}}},
    {8,
     5,
     57,
     {{{48, 9, false, true},
       {39, 9, false, true},
       {30, 9, true, true},
       {21, 9, true, true},
       {12, 9, false, true}}}},
}};

const ModeSpec& Spec(PagingMode mode) { return kModes[static_cast<size_t>(mode)]; }

// Access rights accumulated from the root down: W and U must be granted at every level, XD at
// any level forbids execution.
struct Access {
  bool writable = true;
  bool user = true;
  bool executable = true;

  Access Through(const ModeSpec& spec, const LevelSpec& level, uint64_t entry) const {
    if (!level.has_access) return *this;
    Access a = *this;
    a.writable &= (entry & kWritable) != 0;
    a.user &= (entry & kUser) != 0;
    if (spec.entry_size == 8 && (entry & kNoExecute)) a.executable = false;
    return a;
  }
};

uint64_t LoadEntry(const ModeSpec& spec, const std::byte* p) {
  if (spec.entry_size == 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool IsLeaf(const ModeSpec& spec, int level, uint64_t entry) {
  return level == spec.levels - 1 || (spec.level[level].large_ok && (entry & kPageSize));
}

// Physical base of the next table, or of a 4 KiB page.
uint64_t EntryAddress(const ModeSpec& spec, uint64_t entry) {
  return entry & (spec.entry_size == 4 ? kAddressMask32 : kAddressMask64);
}

// Physical base of the page a leaf entry maps.
uint64_t LeafAddress(const ModeSpec& spec, uint64_t entry, uint64_t size) {
  if (size == 4096) return EntryAddress(spec, entry);
  if (spec.entry_size == 4) {
    // 4 MiB PDE: PA bits 31..22 in place, PA bits 39..32 from PDE bits 20..13 (PSE-36).
    return (entry & 0xffc00000ull) | (((entry >> 13) & 0xff) << 32);
  }
  return entry & kAddressMask64 & ~(size - 1);  // also drops the PAT bit (12)
}

// Physical address of entry `index` of the table at `table`; nullopt on overflow, which only
// a garbage dtb can cause and which reads like a table outside RAM.
std::optional<uint64_t> EntryPa(const ModeSpec& spec, uint64_t table, uint64_t index) {
  return CheckedAdd(table, index * spec.entry_size);
}

Status TableFault(uint64_t va, uint64_t table_pa) {
  char buf[96];
  snprintf(buf, sizeof buf, "page table at 0x%llx for 0x%llx is outside RAM",
           static_cast<unsigned long long>(table_pa), static_cast<unsigned long long>(va));
  return FaultError(va, buf);
}

Status NotMapped(uint64_t va) {
  char buf[64];
  snprintf(buf, sizeof buf, "0x%llx is not mapped", static_cast<unsigned long long>(va));
  return FaultError(va, buf);
}

bool IsCanonical(PagingMode mode, uint64_t va) {
  return OffsetToVirtual(mode, VirtualToOffset(mode, va)) == va;
}

// Depth-first search for the first present leaf in [start, limit) (file offsets). Each table is
// read once per visit, from the first relevant entry to its end; a table outside RAM is skipped.
class Scanner {
 public:
  Scanner(PhysicalMemory& mem, PagingMode mode, uint64_t limit)
      : mem_(mem), mode_(mode), spec_(Spec(mode)), limit_(limit) {}

  // `base` is the file offset the table at `table` starts to cover; start >= base.
  Result<std::optional<Mapping>> Scan(int level, uint64_t table, uint64_t base, uint64_t start,
                                      Access access) {
    const LevelSpec& ls = spec_.level[level];
    const uint64_t entries = 1ull << ls.index_bits;
    const uint64_t first = (start - base) >> ls.shift;
    std::array<std::byte, kMaxTableBytes> buf;
    VMEMFS_ASSIGN_OR_RETURN(bool readable, ReadTable(table, first, entries, buf.data()));
    if (!readable) return std::optional<Mapping>();  // as if absent
    for (uint64_t i = first; i < entries; ++i) {
      const uint64_t offset = base + (i << ls.shift);
      if (offset >= limit_) break;
      if (++visited_ > kScanBudget) return BadDataError("page-table scan limit exceeded");
      const uint64_t entry = LoadEntry(spec_, buf.data() + (i - first) * spec_.entry_size);
      if (!(entry & kPresent)) continue;
      const Access a = access.Through(spec_, ls, entry);
      if (IsLeaf(spec_, level, entry)) {
        const uint64_t size = 1ull << ls.shift;
        return std::optional<Mapping>(Mapping{OffsetToVirtual(mode_, offset),
                                              LeafAddress(spec_, entry, size), size, a.writable,
                                              a.user, a.executable});
      }
      VMEMFS_ASSIGN_OR_RETURN(
          std::optional<Mapping> found,
          Scan(level + 1, EntryAddress(spec_, entry), offset, std::max(start, offset), a));
      if (found) return found;
    }
    return std::optional<Mapping>();
  }

 private:
  // Reads entries [first, entries) of a table into `out` with one read. If that faults, the
  // table lies outside RAM or straddles its end: reads entry by entry up to the first fault and
  // zeroes (makes non-present) the rest, so the scan agrees with Translate for any RAM layout
  // without sub-page holes. Returns false when not even entry `first` is readable: the table
  // counts as absent at the cost of one extra read.
  Result<bool> ReadTable(uint64_t table, uint64_t first, uint64_t entries, std::byte* out) {
    const size_t width = spec_.entry_size;
    std::optional<uint64_t> pa = EntryPa(spec_, table, first);
    if (!pa) return false;
    Status s = mem_.Read(*pa, std::span(out, (entries - first) * width));
    if (s.ok()) return true;
    if (s.code() != ErrorCode::kFault) return s;
    for (uint64_t i = first; i < entries; ++i) {
      // Entry-sized reads are charged to the scan budget: a hostile layout must not turn one
      // call into millions of them.
      if (++visited_ > kScanBudget) return BadDataError("page-table scan limit exceeded");
      std::byte* slot = out + (i - first) * width;
      std::optional<uint64_t> entry_pa = EntryPa(spec_, table, i);
      s = entry_pa ? mem_.Read(*entry_pa, std::span(slot, width)) : FaultError(table);
      if (s.ok()) continue;
      if (s.code() != ErrorCode::kFault) return s;
      if (i == first) return false;
      std::memset(slot, 0, (entries - i) * width);
      break;
    }
    return true;
  }

  PhysicalMemory& mem_;
  PagingMode mode_;
  const ModeSpec& spec_;
  uint64_t limit_;
  uint64_t visited_ = 0;
};

}  // namespace

std::string_view PagingModeName(PagingMode mode) {
  switch (mode) {
    case PagingMode::kLegacy32:
      return "legacy32";
    case PagingMode::kPae:
      return "pae";
    case PagingMode::kIa32e4:
      return "ia32e-4level";
    case PagingMode::kIa32e5:
      return "ia32e-5level";
  }
  return "unknown";
}

std::optional<PagingMode> PagingModeFromRegisters(uint64_t cr0, uint64_t cr4, uint64_t efer) {
  constexpr uint64_t kCr0Pg = 1ull << 31;
  constexpr uint64_t kCr4Pae = 1ull << 5;
  constexpr uint64_t kCr4La57 = 1ull << 12;
  constexpr uint64_t kEferLma = 1ull << 10;
  if (!(cr0 & kCr0Pg)) return std::nullopt;
  if (efer & kEferLma) return (cr4 & kCr4La57) ? PagingMode::kIa32e5 : PagingMode::kIa32e4;
  if (cr4 & kCr4Pae) return PagingMode::kPae;
  return PagingMode::kLegacy32;
}

uint64_t AddressSpaceSize(PagingMode mode) { return 1ull << Spec(mode).va_bits; }

uint64_t UserSpaceEnd(PagingMode mode) {
  const int bits = Spec(mode).va_bits;
  return bits == 32 ? AddressSpaceSize(mode) : 1ull << (bits - 1);
}

uint64_t OffsetToVirtual(PagingMode mode, uint64_t offset) {
  const int bits = Spec(mode).va_bits;
  const uint64_t low = offset & (AddressSpaceSize(mode) - 1);
  if (bits == 32) return low;  // no sign extension outside IA-32e
  // Sign-extend bit (bits - 1): shift it to bit 63, then arithmetic-shift back.
  return static_cast<uint64_t>(static_cast<int64_t>(low << (64 - bits)) >> (64 - bits));
}

uint64_t VirtualToOffset(PagingMode mode, uint64_t va) { return va & (AddressSpaceSize(mode) - 1); }

uint64_t DtbFromCr3(PagingMode mode, uint64_t cr3) {
  switch (mode) {
    case PagingMode::kLegacy32:
      return cr3 & 0xfffff000ull;
    case PagingMode::kPae:
      return cr3 & 0xffffffe0ull;
    case PagingMode::kIa32e4:
    case PagingMode::kIa32e5:
      return cr3 & kAddressMask64;
  }
  return 0;
}

Result<Mapping> Translate(PhysicalMemory& mem, PagingMode mode, uint64_t dtb, uint64_t va) {
  if (!IsCanonical(mode, va)) {
    char buf[80];
    snprintf(buf, sizeof buf, "0x%llx is not a canonical %s address",
             static_cast<unsigned long long>(va), std::string(PagingModeName(mode)).c_str());
    return FaultError(va, buf);
  }
  const ModeSpec& spec = Spec(mode);
  uint64_t table = dtb;
  Access access;
  for (int level = 0; level < spec.levels; ++level) {
    const LevelSpec& ls = spec.level[level];
    const uint64_t index = (va >> ls.shift) & ((1ull << ls.index_bits) - 1);
    std::optional<uint64_t> pa = EntryPa(spec, table, index);
    if (!pa) return TableFault(va, table);
    std::byte raw[8];
    if (Status s = mem.Read(*pa, std::span(raw, spec.entry_size)); !s.ok()) {
      if (s.code() == ErrorCode::kFault) return TableFault(va, table);
      return s;
    }
    const uint64_t entry = LoadEntry(spec, raw);
    if (!(entry & kPresent)) return NotMapped(va);
    access = access.Through(spec, ls, entry);
    if (IsLeaf(spec, level, entry)) {
      const uint64_t size = 1ull << ls.shift;
      return Mapping{
          va & ~(size - 1), LeafAddress(spec, entry, size), size, access.writable, access.user,
          access.executable};
    }
    table = EntryAddress(spec, entry);
  }
  return NotMapped(va);  // unreachable: the last level is always a leaf
}

Result<std::optional<Mapping>> NextMapping(PhysicalMemory& mem, PagingMode mode, uint64_t dtb,
                                           uint64_t offset, uint64_t limit) {
  limit = std::min(limit, AddressSpaceSize(mode));
  if (offset >= limit) return std::optional<Mapping>();
  return Scanner(mem, mode, limit).Scan(0, dtb, 0, offset, Access{});
}

}  // namespace vmemfs::vmi
