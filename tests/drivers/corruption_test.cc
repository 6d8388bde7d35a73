// Damaged snapshots, in the spirit of leveldb's corruption_test: every truncation and every
// byte flip in the headers must give an error or a valid layout, never a crash or a layout
// that breaks its contract.
#include <gtest/gtest.h>

#include <random>

#include "drivers/elf_core.h"
#include "drivers/lime.h"
#include "drivers/snapshot_driver.h"
#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::BuildElf;
using testing::BuildLime;
using testing::Bytes;
using testing::Pattern;
using testing::PutAt;

// The SnapshotLayout contract, checked against the file it came from.
void ExpectValidLayout(const Result<SnapshotLayout>& layout, size_t file_size) {
  if (!layout) {
    EXPECT_FALSE(layout.error().message().empty());
    return;
  }
  const auto& segs = layout->segments;
  EXPECT_LE(segs.size(), kMaxSnapshotSegments);
  EXPECT_LE(layout->vcpus.size(), kMaxSnapshotVcpus);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_GT(segs[i].size, 0u);
    EXPECT_LE(segs[i].file_offset, file_size);
    EXPECT_LE(segs[i].size, file_size - segs[i].file_offset);
    EXPECT_LE(segs[i].phys_start, ~0ull - segs[i].size);
    if (i > 0) {
      EXPECT_LE(segs[i - 1].phys_start + segs[i - 1].size, segs[i].phys_start);
    }
  }
}

Bytes Elf64() {
  testing::ElfSpec spec = testing::SampleElf64();
  for (auto& l : spec.loads) l.data.resize(64);  // small data: headers dominate
  return BuildElf(spec);
}

Bytes Elf32() {
  testing::ElfSpec spec;
  spec.is64 = false;
  spec.machine = 3;
  spec.notes.push_back({"CORE", 1, testing::Prstatus32(1)});
  spec.notes.push_back({"QEMU", 0, testing::EncodeQemuState({})});
  spec.notes.push_back({"VMCOREINFO", 0, testing::Text("PAGESIZE=4096\n")});
  spec.loads.push_back({0x1000, Pattern(64, 1)});
  spec.loads.push_back({0, Pattern(64, 2)});
  return BuildElf(spec);
}

Bytes Lime() { return BuildLime({{0x1000, Pattern(64, 1)}, {0, Pattern(32, 2)}}); }

using Parser = Result<SnapshotLayout> (*)(std::span<const std::byte>);

struct Subject {
  const char* name;
  Bytes (*build)();
  Parser parse;
};

const Subject kSubjects[] = {
    {"elf64", Elf64, ParseElfCore}, {"elf32", Elf32, ParseElfCore}, {"lime", Lime, ParseLime}};

TEST(CorruptionTest, TruncationAtEveryLength) {
  for (const Subject& s : kSubjects) {
    const Bytes file = s.build();
    ASSERT_TRUE(s.parse(file)) << s.name;
    for (size_t len = 0; len < file.size(); ++len) {
      SCOPED_TRACE(std::string(s.name) + " truncated to " + std::to_string(len));
      Bytes cut(file.begin(), file.begin() + len);
      ExpectValidLayout(s.parse(cut), cut.size());
    }
  }
}

TEST(CorruptionTest, EveryHeaderByteFlippedEveryWay) {
  for (const Subject& s : kSubjects) {
    const Bytes file = s.build();
    // Headers and notes; the RAM bytes behind them cannot be corrupt.
    const size_t header_bytes = std::min<size_t>(file.size(), 2048);
    for (size_t i = 0; i < header_bytes; ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        Bytes bad = file;
        bad[i] ^= std::byte{mask};
        SCOPED_TRACE(std::string(s.name) + " byte " + std::to_string(i));
        ExpectValidLayout(s.parse(bad), bad.size());
      }
    }
  }
}

TEST(CorruptionTest, RandomMultiByteDamage) {
  std::mt19937_64 rng(42);
  for (const Subject& s : kSubjects) {
    const Bytes file = s.build();
    for (int round = 0; round < 3000; ++round) {
      Bytes bad = file;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) {
        const size_t at = rng() % bad.size();
        // Plant extreme values where fields live, not just random bits.
        switch (rng() % 3) {
          case 0:
            bad[at] = std::byte(static_cast<uint8_t>(rng()));
            break;
          case 1:
            if (at + 4 <= bad.size()) PutAt<uint32_t>(bad, at, ~0u);
            break;
          default:
            if (at + 8 <= bad.size()) PutAt<uint64_t>(bad, at, 1ull << (rng() % 64));
            break;
        }
      }
      ExpectValidLayout(s.parse(bad), bad.size());
    }
  }
}

TEST(CorruptionTest, AbsurdProgramHeaderTable) {
  const Bytes file = Elf64();
  for (uint16_t phnum : {0, 1, 100, 0xfffe, 0xffff}) {
    Bytes bad = file;
    PutAt<uint16_t>(bad, 56, phnum);
    ExpectValidLayout(ParseElfCore(bad), bad.size());
  }
  const uint64_t size = file.size();
  for (uint64_t phoff : {uint64_t{0}, uint64_t{1}, ~uint64_t{63}, uint64_t{1} << 40, size}) {
    Bytes bad = file;
    PutAt<uint64_t>(bad, 32, phoff);
    ExpectValidLayout(ParseElfCore(bad), bad.size());
  }
  for (uint16_t phentsize : {0, 1, 55, 0xffff}) {
    Bytes bad = file;
    PutAt<uint16_t>(bad, 54, phentsize);
    ExpectValidLayout(ParseElfCore(bad), bad.size());
  }
  // PN_XNUM with a hostile section header.
  for (uint64_t shoff : {uint64_t{0}, uint64_t{8}, size - 4, ~uint64_t{0}}) {
    Bytes bad = file;
    PutAt<uint16_t>(bad, 56, 0xffff);
    PutAt<uint64_t>(bad, 40, shoff);
    ExpectValidLayout(ParseElfCore(bad), bad.size());
  }
}

TEST(CorruptionTest, HostileProgramHeaderFields) {
  const Bytes file = Elf64();
  const size_t load = 64 + 56;  // program header 1, the first PT_LOAD
  const uint64_t values[] = {0, 1, 0x7fffffffffffffff, ~0ull, ~0ull - 63, file.size(), 1ull << 63};
  for (size_t field : {8, 24, 32, 40}) {  // p_offset, p_paddr, p_filesz, p_memsz
    for (uint64_t v : values) {
      Bytes bad = file;
      PutAt<uint64_t>(bad, load + field, v);
      ExpectValidLayout(ParseElfCore(bad), bad.size());
    }
  }
}

TEST(CorruptionTest, DamagedSnapshotFilesOpenOrFailCleanly) {
  testing::TempDir dir;
  std::mt19937_64 rng(7);
  for (const Subject& s : kSubjects) {
    const Bytes file = s.build();
    for (int round = 0; round < 200; ++round) {
      Bytes bad = file;
      bad.resize(1 + rng() % bad.size());
      bad[rng() % bad.size()] ^= std::byte{0x40};
      auto d = OpenSnapshot(dir.Write("damaged", bad), {});
      if (!d) continue;
      for (const PhysRange& r : (*d)->ranges()) {
        Bytes out(static_cast<size_t>(std::min<uint64_t>(r.size(), 256)));
        EXPECT_TRUE((*d)->ReadPhys(r.start, out).ok());
      }
    }
  }
}

}  // namespace
}  // namespace vmemfs::drivers
