#include "vmi/linux/guest_root.h"
#include "vmi/linux/kallsyms.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/checked.h"
#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

// --- A synthetic kallsyms image, built independently of the decoder ---

constexpr uint64_t kBase = 0xffffffff81000000ull;  // where the fake tables live

// Kernel virtual memory as one byte vector at kBase, whole pages as a real mapping; anything
// else faults.
struct FakeKernel {
  std::vector<std::byte> bytes;
  size_t reads = 0;

  uint64_t Put(const void* data, size_t n) {
    uint64_t at = kBase + bytes.size();
    const auto* p = static_cast<const std::byte*>(data);
    bytes.insert(bytes.end(), p, p + n);
    while (bytes.size() % 8) bytes.push_back(std::byte{0});
    return at;
  }
  KernelReader Reader() {
    bytes.resize((bytes.size() + 4095) / 4096 * 4096);
    return [this](uint64_t va, std::span<std::byte> out) -> Status {
      ++reads;
      if (va < kBase || !RangeWithin(va - kBase, out.size(), bytes.size())) return FaultError(va);
      std::memcpy(out.data(), bytes.data() + (va - kBase), out.size());
      return Status();
    };
  }
};

struct FakeSymbol {
  uint64_t address;
  char type;
  std::string name;
};

// Tokens: 0..0x7f stand for themselves, 0x80 = "sys_", 0x81 = "_do", 0x82.. = "x" (unused).
// Names are encoded greedily with those two multi-character tokens.
std::vector<uint8_t> Encode(const std::string& full) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < full.size();) {
    if (full.compare(i, 4, "sys_") == 0) {
      out.push_back(0x80);
      i += 4;
    } else if (full.compare(i, 3, "_do") == 0) {
      out.push_back(0x81);
      i += 3;
    } else {
      out.push_back(static_cast<uint8_t>(full[i++]));
    }
  }
  return out;
}

struct Options {
  bool absolute_percpu = true;
  bool give_stext = true;
  bool markers = false;  // kallsyms_markers right after the names, as scripts/kallsyms.c does
};

KallsymsAddresses Build(FakeKernel& k, const std::vector<FakeSymbol>& syms, uint64_t base,
                        Options opt = {}) {
  KallsymsAddresses at;
  uint32_t n = static_cast<uint32_t>(syms.size());
  at.num_syms = k.Put(&n, 4);
  std::vector<uint8_t> names;
  std::vector<uint32_t> markers;
  for (const FakeSymbol& s : syms) {
    if (markers.size() * 256 == static_cast<size_t>(&s - syms.data())) {
      markers.push_back(static_cast<uint32_t>(names.size()));
    }
    std::vector<uint8_t> enc = Encode(std::string(1, s.type) + s.name);
    if (enc.size() >= 0x80) {  // big symbol: two length bytes
      names.push_back(static_cast<uint8_t>(0x80 | (enc.size() & 0x7f)));
      names.push_back(static_cast<uint8_t>(enc.size() >> 7));
    } else {
      names.push_back(static_cast<uint8_t>(enc.size()));
    }
    names.insert(names.end(), enc.begin(), enc.end());
  }
  at.names = k.Put(names.data(), names.size());
  if (opt.markers) k.Put(markers.data(), markers.size() * 4);
  std::string table;
  std::vector<uint16_t> index(256);
  for (int i = 0; i < 256; ++i) {
    index[i] = static_cast<uint16_t>(table.size());
    if (i == 0x80)
      table += "sys_";
    else if (i == 0x81)
      table += "_do";
    else if (i < 0x80)
      table += static_cast<char>(i == 0 ? '?' : i);
    else
      table += "x";
    table += '\0';
  }
  at.token_table = k.Put(table.data(), table.size());
  at.token_index = k.Put(index.data(), index.size() * 2);
  std::vector<int32_t> offsets;
  for (const FakeSymbol& s : syms) {
    if (!opt.absolute_percpu)
      offsets.push_back(static_cast<int32_t>(s.address - base));
    else if (s.address < (1ull << 31))
      offsets.push_back(static_cast<int32_t>(s.address));
    else
      offsets.push_back(static_cast<int32_t>(-static_cast<int64_t>(s.address - base) - 1));
  }
  at.offsets = k.Put(offsets.data(), offsets.size() * 4);
  at.relative_base = k.Put(&base, 8);
  for (const FakeSymbol& s : syms) {
    if (s.name == "_stext" && opt.give_stext) at.stext = s.address;
  }
  return at;
}

const uint64_t kRelBase = 0xffffffff8a000000ull;

std::vector<FakeSymbol> Sample() {
  return {{0, 'A', "fixed_percpu_data"},
          {0x1000, 'A', "cpu_debug_store"},
          {kRelBase, 'T', "_stext"},
          {kRelBase + 0x10, 't', "sys_do_thing"},
          {kRelBase + 0x10, 'T', "__x64_sys_read"},
          {kRelBase + 0x200, 'd', "static_data"},
          {kRelBase + 0x300, 'd', "static_data"},
          {kRelBase + 0x7fff0000, 'B', "_end"}};
}

TEST(KallsymsTest, DecodesAbsolutePercpuTable) {
  FakeKernel k;
  auto syms = Sample();
  KallsymsAddresses at = Build(k, syms, kRelBase);
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  ASSERT_EQ(table->size(), syms.size());
  for (size_t i = 0; i < syms.size(); ++i) {
    EXPECT_EQ((*table)[i].address, syms[i].address) << i;
    EXPECT_EQ((*table)[i].type, syms[i].type) << i;
    EXPECT_EQ((*table)[i].name, syms[i].name) << i;
  }
  std::string want =
      "0000000000000000 A fixed_percpu_data\n"
      "0000000000001000 A cpu_debug_store\n"
      "ffffffff8a000000 T _stext\n"
      "ffffffff8a000010 t sys_do_thing\n";
  EXPECT_EQ(table->KallsymsText().substr(0, want.size()), want);
}

TEST(KallsymsTest, DecodesRelativeTableWithoutNegativeOffsets) {
  FakeKernel k;
  std::vector<FakeSymbol> syms = {{kRelBase, 'T', "_stext"}, {kRelBase + 0x80000000ull, 'T', "hi"}};
  KallsymsAddresses at = Build(k, syms, kRelBase, {.absolute_percpu = false});
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  EXPECT_EQ((*table)[1].address, kRelBase + 0x80000000ull);  // u32 offset, not sign-extended
}

TEST(KallsymsTest, StextPicksTheRuleWhenOffsetsAreAmbiguous) {
  // Relative offsets >= 2^31 look negative; without _stext the decoder would guess
  // ABSOLUTE_PERCPU, _stext corrects it.
  FakeKernel k;
  std::vector<FakeSymbol> syms = {{kRelBase + 0x80000000ull, 'T', "_stext"}};
  KallsymsAddresses at = Build(k, syms, kRelBase, {.absolute_percpu = false});
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  EXPECT_EQ((*table)[0].address, kRelBase + 0x80000000ull);
  at.stext = 0x1234;  // nothing matches
  EXPECT_EQ(DecodeKallsyms(k.Reader(), at).error().code(), ErrorCode::kBadData);
}

// i386: kallsyms_relative_base is a 4-byte unsigned long, and whatever follows it in memory is
// not part of it; addresses print as 8 hex digits there.
TEST(KallsymsTest, DecodesA32BitKernelsTables) {
  FakeKernel k;
  const uint64_t base = 0xc9000000;
  std::vector<FakeSymbol> syms = {{base, 'T', "_stext"}, {base + 0x10, 't', "sys_do_thing"}};
  KallsymsAddresses at = Build(k, syms, base, {.absolute_percpu = false});
  const uint32_t base_and_garbage[2] = {static_cast<uint32_t>(base), 0xdeadbeef};
  at.relative_base = k.Put(base_and_garbage, 8);
  at.pointer_size = 4;
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  EXPECT_EQ((*table)[1].address, base + 0x10);
  table->set_address_digits(8);
  EXPECT_EQ(table->KallsymsText(), "c9000000 T _stext\nc9000010 t sys_do_thing\n");
  // kallsyms_addresses[] of unsigned long.
  const uint32_t addresses[2] = {static_cast<uint32_t>(base), static_cast<uint32_t>(base + 0x10)};
  at.offsets.reset();
  at.relative_base.reset();
  at.addresses = k.Put(addresses, sizeof addresses);
  table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  EXPECT_EQ((*table)[0].address, base);
  EXPECT_EQ((*table)[1].address, base + 0x10);
}

TEST(KallsymsTest, DecodesBigSymbols) {
  FakeKernel k;
  std::string long_name(300, 'q');
  std::vector<FakeSymbol> syms = {{kRelBase, 'T', "_stext"}, {kRelBase + 8, 't', long_name}};
  KallsymsAddresses at = Build(k, syms, kRelBase);
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_TRUE(table.has_value()) << table.error().ToString();
  EXPECT_EQ((*table)[1].name, long_name);
  EXPECT_EQ((*table)[1].type, 't');
}

TEST(KallsymsTest, RejectsImplausibleCounts) {
  for (uint32_t count : {0u, kMaxKallsyms + 1}) {
    FakeKernel k;
    KallsymsAddresses at = Build(k, Sample(), kRelBase);
    std::memcpy(k.bytes.data() + (at.num_syms - kBase), &count, 4);
    auto table = DecodeKallsyms(k.Reader(), at);
    ASSERT_FALSE(table.has_value());
    EXPECT_EQ(table.error().code(), ErrorCode::kBadData) << table.error().ToString();
  }
}

TEST(KallsymsTest, CountBeyondTheNamesFailsWithoutHugeWork) {
  FakeKernel k;
  KallsymsAddresses at = Build(k, Sample(), kRelBase);
  uint32_t count = kMaxKallsyms;
  std::memcpy(k.bytes.data() + (at.num_syms - kBase), &count, 4);
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_FALSE(table.has_value());  // names run off the end of memory, or the offsets do
  EXPECT_LT(k.reads, 1000u);
}

TEST(KallsymsTest, TokenOutsideTableOrUnterminatedIsBadData) {
  FakeKernel k;
  KallsymsAddresses at = Build(k, Sample(), kRelBase);
  uint16_t far = 0xffff;
  std::memcpy(k.bytes.data() + (at.token_index - kBase) + 2 * 7, &far, 2);
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_FALSE(table.has_value());
  EXPECT_EQ(table.error().code(), ErrorCode::kBadData) << table.error().ToString();
}

TEST(KallsymsTest, UnreadableTablesReportTheTable) {
  FakeKernel k;
  KallsymsAddresses at = Build(k, Sample(), kRelBase);
  at.offsets = 0x1000;
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_FALSE(table.has_value());
  EXPECT_NE(table.error().message().find("kallsyms_offsets"), std::string::npos);
}

// --- Damaged names: only what can be trusted is kept ---

std::vector<FakeSymbol> Many(size_t n) {
  std::vector<FakeSymbol> syms = {{kRelBase, 'T', "_stext"}};
  for (size_t i = 1; i < n; ++i) syms.push_back({kRelBase + 16 * i, 't', "fn_" + std::to_string(i)});
  return syms;
}

// Overwrites the names table from name `first` on with `bytes` garbage bytes.
void DamageNames(FakeKernel& k, const KallsymsAddresses& at, size_t first_byte, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) {
    k.bytes[at.names - kBase + first_byte + i] = std::byte{static_cast<uint8_t>(0x95 + 7 * i)};
  }
}

TEST(KallsymsTest, MarkersKeepTheBlocksBeforeTheDamage) {
  FakeKernel k;
  auto syms = Many(1000);
  KallsymsAddresses at = Build(k, syms, kRelBase, {.markers = true});
  KallsymsReport report;
  auto whole = DecodeKallsyms(k.Reader(), at, &report);
  ASSERT_TRUE(whole) << whole.error().ToString();
  EXPECT_EQ(whole->size(), 1000u);
  EXPECT_TRUE(report.markers);
  EXPECT_EQ(report.kept, 1000u);
  EXPECT_TRUE(report.damage.empty());
  // Names 256..511 are block 1; garbage in its middle shifts every name after it.
  DamageNames(k, at, 400 * 7, 40);
  auto damaged = DecodeKallsyms(k.Reader(), at, &report);
  ASSERT_TRUE(damaged) << damaged.error().ToString();
  EXPECT_EQ(damaged->size(), 256u);
  EXPECT_EQ(report.count, 1000u);
  EXPECT_EQ(report.kept, 256u);
  EXPECT_NE(report.damage.find("kallsyms_markers"), std::string::npos) << report.damage;
  for (size_t i = 0; i < damaged->size(); ++i) EXPECT_EQ((*damaged)[i].name, syms[i].name);
}

TEST(KallsymsTest, NamesVmcoreInfoContradictsAreDropped) {
  FakeKernel k;
  KallsymsAddresses at = Build(k, Many(300), kRelBase);
  at.known = {{"fn_7", kRelBase + 16 * 7}, {"fn_9", kRelBase + 16 * 9}};
  ASSERT_TRUE(DecodeKallsyms(k.Reader(), at));
  at.known = {{"fn_7", kRelBase + 16 * 8}};  // the name is there, at another address
  auto table = DecodeKallsyms(k.Reader(), at);
  ASSERT_FALSE(table);
  EXPECT_NE(table.error().message().find("fn_7"), std::string::npos) << table.error().message();
  at.known = {{"a", kRelBase}, {"b", kRelBase + 16}, {"c", kRelBase + 32}};  // none is there
  EXPECT_FALSE(DecodeKallsyms(k.Reader(), at));
}

TEST(KallsymsTest, GarbageNamesWithoutMarkersAreNotServed) {
  FakeKernel k;
  auto syms = Many(600);
  KallsymsAddresses at = Build(k, syms, kRelBase);
  // Same lengths, other characters: names that still decode, but not as identifiers.
  size_t pos = at.names - kBase;
  for (size_t i = 0; i < 600; ++i) {
    const size_t len = static_cast<size_t>(k.bytes[pos]);
    for (size_t j = 2; j <= len; ++j) k.bytes[pos + j] = std::byte{0x7f};  // DEL, not a name
    pos += 1 + len;
  }
  KallsymsReport report;
  auto table = DecodeKallsyms(k.Reader(), at, &report);
  ASSERT_FALSE(table);
  EXPECT_NE(table.error().message().find("printable"), std::string::npos)
      << table.error().message();
}

TEST(KallsymsTest, AddressesFromVmcoreInfo) {
  auto info = VmcoreInfo::Parse(
      "OSRELEASE=6.1\nSYMBOL(kallsyms_names)=10\nSYMBOL(kallsyms_num_syms)=20\n"
      "SYMBOL(kallsyms_token_table)=30\nSYMBOL(kallsyms_token_index)=40\n"
      "SYMBOL(kallsyms_offsets)=50\nSYMBOL(kallsyms_relative_base)=60\nSYMBOL(_stext)=70\n");
  ASSERT_TRUE(info.has_value());
  auto at = KallsymsAddresses::FromVmcoreInfo(*info);
  ASSERT_TRUE(at.has_value()) << at.error().ToString();
  EXPECT_EQ(at->names, 0x10u);
  EXPECT_EQ(at->relative_base, 0x60u);
  EXPECT_EQ(at->stext, 0x70u);
  EXPECT_TRUE(at->known.empty());  // 0x70 is no kernel-image address
  auto partial = VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(kallsyms_names)=10\n");
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(KallsymsAddresses::FromVmcoreInfo(*partial).error().code(), ErrorCode::kNotFound);
}

// --- Real guests: every line of the guest's own /proc/kallsyms must come out the same ---

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RealGuestKallsymsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RealGuestKallsymsTest, EveryTruthLineMatches) {
  std::filesystem::path dir = std::filesystem::path(::vmemfs::testing::GuestRoot()) / GetParam();
  if (!std::filesystem::exists(dir / "raw.mem") ||
      !std::filesystem::exists(dir / "truth/kallsyms.txt")) {
    GTEST_SKIP() << "no test guest at " << dir;
  }
  auto driver = drivers::OpenSnapshot((dir / "raw.mem").string(), {});
  ASSERT_TRUE(driver.has_value()) << driver.error().ToString();
  auto guest = Guest::Open(std::move(*driver));
  ASSERT_TRUE(guest.has_value()) << guest.error().ToString();
  auto where = LocateVmcoreInfo(**guest);
  ASSERT_TRUE(where.has_value()) << where.error().ToString();
  auto info = VmcoreInfo::Parse(where->text);
  ASSERT_TRUE(info.has_value());
  auto layout = FindKernelLayout(**guest, *info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  auto at = KallsymsAddresses::FromVmcoreInfo(*info);
  ASSERT_TRUE(at.has_value()) << at.error().ToString();

  KernelMemory memory(**guest, {layout->mode, layout->page_table_root});
  auto start = std::chrono::steady_clock::now();
  auto table = ReadKallsyms(memory, *at);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(table.has_value()) << table.error().ToString();

  std::string ours = table->KallsymsText();
  std::unordered_set<std::string_view> lines;
  for (size_t pos = 0; pos < ours.size();) {
    size_t eol = ours.find('\n', pos);
    lines.insert(std::string_view(ours).substr(pos, eol - pos));
    pos = eol + 1;
  }
  // The kallsyms tables hold the core kernel's symbols; the guest's /proc/kallsyms lists its
  // modules' after them ("\t[module]"), which modules.cc reads.
  std::string truth = ReadFile(dir / "truth/kallsyms.txt");
  if (size_t modules = truth.find("\t["); modules != std::string::npos) {
    truth.resize(truth.rfind('\n', modules) + 1);
  }
  size_t total = 0, missing = 0;
  for (size_t pos = 0; pos < truth.size();) {
    size_t eol = truth.find('\n', pos);
    if (eol == std::string::npos) eol = truth.size();
    std::string_view line = std::string_view(truth).substr(pos, eol - pos);
    pos = eol + 1;
    ++total;
    if (!lines.contains(line)) {
      if (++missing <= 5) ADD_FAILURE() << "missing: " << line;
    }
  }
  std::printf(
      "[ %s ] kallsyms: %zu symbols decoded in %.1f ms; truth %zu lines, %zu missing; "
      "text identical: %s\n",
      GetParam(), table->size(), ms, total, missing, ours == truth ? "yes" : "no");
  EXPECT_EQ(missing, 0u);
  EXPECT_GT(total, 1000u);
  // Same lines, same order (the kernel's table order); compared as a flag so that a failure
  // does not make gtest diff two 3.6 MB strings.
  EXPECT_TRUE(ours == truth) << "decoded text differs from the guest's /proc/kallsyms";
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestKallsymsTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
