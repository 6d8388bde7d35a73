// Mounts real snapshots of the test guests (4- and 5-level paging) and checks every file
// against what the guest and QEMU said about themselves.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

struct Range {
  uint64_t start, end;  // [start, end)
  bool operator==(const Range&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Range& r) {
  return os << std::hex << "[0x" << r.start << ", 0x" << r.end << ")" << std::dec;
}

// The PT_LOAD ranges of an ELF core, read here with <elf.h> independently of vmemfs's parser,
// merged where adjacent.
std::vector<Range> ElfLoadRanges(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Elf64_Ehdr eh;
  in.read(reinterpret_cast<char*>(&eh), sizeof eh);
  std::vector<Range> ranges;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    in.seekg(eh.e_phoff + i * sizeof ph);
    in.read(reinterpret_cast<char*>(&ph), sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    ranges.push_back({ph.p_paddr, ph.p_paddr + ph.p_filesz});
  }
  std::sort(ranges.begin(), ranges.end(), [](auto& a, auto& b) { return a.start < b.start; });
  std::vector<Range> merged;
  for (const Range& r : ranges) {
    if (!merged.empty() && merged.back().end == r.start) {
      merged.back().end = r.end;
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

// The data ranges of a file according to SEEK_DATA/SEEK_HOLE.
std::vector<Range> SeekRanges(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  std::vector<Range> ranges;
  off_t pos = 0;
  for (int i = 0; i < 1000; ++i) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    ranges.push_back({uint64_t(data), uint64_t(hole)});
    pos = hole;
  }
  close(fd);
  return ranges;
}

// Compares two files' byte ranges in 1 MiB chunks; returns the first differing offset or -1.
int64_t FirstDifference(const std::string& a, uint64_t a_off, const std::string& b, uint64_t b_off,
                        uint64_t length) {
  int fa = open(a.c_str(), O_RDONLY), fb = open(b.c_str(), O_RDONLY);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  int64_t diff = -1;
  for (uint64_t done = 0; done < length && diff < 0;) {
    size_t n = std::min<uint64_t>(ba.size(), length - done);
    ssize_t ra = pread(fa, ba.data(), n, off_t(a_off + done));
    ssize_t rb = pread(fb, bb.data(), n, off_t(b_off + done));
    if (ra != ssize_t(n) || rb != ssize_t(n)) {
      diff = int64_t(done);
      break;
    }
    if (memcmp(ba.data(), bb.data(), n) != 0) {
      for (size_t i = 0; i < n; ++i) {
        if (ba[i] != bb[i]) {
          diff = int64_t(done + i);
          break;
        }
      }
    }
    done += n;
  }
  close(fa);
  close(fb);
  return diff;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

class GuestSnapshotTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string dir() const { return GuestDir(GetParam()); }
  std::string raw() const { return dir() + "/raw.mem"; }
  std::string core() const { return dir() + "/core.elf"; }
};

TEST_P(GuestSnapshotTest, RawPmemEqualsTheSnapshotByteForByte) {
  Mount m({"g=" + raw()});
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(FileSize(m / "g/pmem"), FileSize(raw()));
  EXPECT_EQ(FirstDifference(m / "g/pmem", 0, raw(), 0, FileSize(raw())), -1);
  EXPECT_EQ(SeekRanges(m / "g/pmem"), (std::vector<Range>{{0, FileSize(raw())}}));
}

TEST_P(GuestSnapshotTest, ElfPmemHasTheCoreRamRangesWithTheRawBytes) {
  std::vector<Range> ram = ElfLoadRanges(core());
  // QEMU's BIOS ROM, a segment above all RAM (the raw snapshot is the RAM), is not RAM: pmem
  // ends with the RAM (ElfSnapshotRomTest checks the ROM).
  while (!ram.empty() && ram.back().start >= FileSize(raw())) ram.pop_back();
  ASSERT_FALSE(ram.empty());
  Mount m({"g=" + core()});
  ASSERT_TRUE(m.ok()) << m.error();
  std::string pmem = m / "g/pmem";
  EXPECT_EQ(FileSize(pmem), ram.back().end);
  EXPECT_EQ(SeekRanges(pmem), ram);
  // The raw and ELF snapshots come from the same paused moment.
  for (const Range& r : ram) {
    EXPECT_EQ(FirstDifference(pmem, r.start, raw(), r.start, r.end - r.start), -1) << r;
  }
  // Gaps read as zeros.
  for (size_t i = 0; i + 1 < ram.size(); ++i) {
    std::string gap = PreadAt(pmem, ram[i].end, 4096);
    EXPECT_EQ(gap, std::string(gap.size(), '\0'));
    EXPECT_FALSE(gap.empty());
  }
}

TEST_P(GuestSnapshotTest, KmemAtLinuxBannerReadsTheGuestsUname) {
  uint64_t banner = TruthSymbol(GetParam(), "linux_banner");
  ASSERT_NE(banner, 0u) << "no linux_banner in the guest's kallsyms";
  std::string uname = TrimNewline(ReadFile(dir() + "/truth/uname.txt"));
  ASSERT_FALSE(uname.empty());
  Mount m({"g=" + core()});
  ASSERT_TRUE(m.ok()) << m.error();
  uint64_t size = std::stoull(InfoValue(ReadFile(m / "g/info"), "kmem-size"), nullptr, 16);
  ASSERT_EQ(FileSize(m / "g/kmem"), size);
  uint64_t offset = banner & (size - 1);
  std::string text = PreadAt(m / "g/kmem", offset, 512);
  EXPECT_EQ(text.substr(0, 14 + uname.size()), "Linux version " + uname);
  std::string truth = ReadFile(dir() + "/truth/banner.txt");
  EXPECT_EQ(text.substr(0, truth.size()), truth);
  // The banner is data, and SEEK_HOLE finds the end of its mapping after it.
  int fd = open((m / "g/kmem").c_str(), O_RDONLY);
  EXPECT_EQ(lseek(fd, off_t(offset), SEEK_DATA), off_t(offset));
  EXPECT_GT(lseek(fd, off_t(offset), SEEK_HOLE), off_t(offset + truth.size()));
  // The first data in the file is at or before the banner.
  off_t first = lseek(fd, 0, SEEK_DATA);
  EXPECT_GE(first, 0);
  EXPECT_LE(first, off_t(offset));
  close(fd);
}

TEST_P(GuestSnapshotTest, PagingModeFollowsCr4La57) {
  auto regs = TruthRegisters(GetParam());
  ASSERT_TRUE(regs.count(0) && regs[0].count("cr4"));
  bool la57 = regs[0]["cr4"] & (1u << 12);
  Mount m({"g=" + core()});
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(InfoValue(ReadFile(m / "g/info"), "page-mode"), la57 ? "ia32e-5level" : "ia32e-4level");
  EXPECT_EQ(GetParam() == "l5", la57) << "the l5 guest must run with 5-level paging";
}

TEST_P(GuestSnapshotTest, VcpuRegistersEqualWhatQemuReports) {
  auto truth = TruthRegisters(GetParam());
  ASSERT_FALSE(truth.empty());
  Mount m({"g=" + core()});
  ASSERT_TRUE(m.ok()) << m.error();
  // Our names for QEMU's where they differ.
  const std::map<std::string, std::string> renamed = {{"gdt_base", "gdtr_base"},
                                                      {"gdt_limit", "gdtr_limit"},
                                                      {"idt_base", "idtr_base"},
                                                      {"idt_limit", "idtr_limit"}};
  for (const auto& [cpu, regs] : truth) {
    std::string base = m / ("g/vcpu/" + std::to_string(cpu) + "/");
    EXPECT_EQ(std::stoull(ReadFile(base + "cr3"), nullptr, 16), regs.at("cr3")) << "vcpu " << cpu;
    std::istringstream in(ReadFile(base + "regs"));
    std::string name, hex;
    int compared = 0;
    while (in >> name >> hex) {
      std::string qemu_name = name;
      for (const auto& [q, ours] : renamed) {
        if (ours == name) qemu_name = q;
      }
      if (!regs.count(qemu_name)) continue;
      EXPECT_EQ(std::stoull(hex, nullptr, 16), regs.at(qemu_name)) << "vcpu " << cpu << " " << name;
      ++compared;
    }
    EXPECT_GE(compared, 24) << "too few registers to compare on vcpu " << cpu;
  }
}

TEST_P(GuestSnapshotTest, EightConcurrentReadersGetExactlyTheSnapshotBytes) {
  Mount m({"g=" + raw()});
  ASSERT_TRUE(m.ok()) << m.error();
  const uint64_t size = FileSize(raw());
  std::atomic<int> wrong{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      int mine = open((m / "g/pmem").c_str(), O_RDONLY), ref = open(raw().c_str(), O_RDONLY);
      std::vector<char> a(256 << 10), b(256 << 10);
      for (int i = 0; i < 400; ++i) {
        size_t n = 1 + rng() % a.size();
        uint64_t off = rng() % (size - n);
        ssize_t ra = pread(mine, a.data(), n, off_t(off));
        ssize_t rb = pread(ref, b.data(), n, off_t(off));
        if (ra != rb || memcmp(a.data(), b.data(), n) != 0) ++wrong;
        ++reads;
      }
      close(mine);
      close(ref);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reads.load(), 8 * 400);
  EXPECT_EQ(wrong.load(), 0);
}

// A LiME file written here from the ELF core's RAM ranges and the raw bytes mounts with the
// same ranges and bytes.
TEST_P(GuestSnapshotTest, LimeFileMountsWithTheSameRangesAndBytes) {
  std::vector<Range> ram = ElfLoadRanges(core());
  TempDir tmp;
  std::string lime = tmp.path() + "/guest.lime";
  std::vector<std::pair<uint64_t, uint64_t>> in_raw;
  for (const Range& r : ram) {
    if (r.end <= FileSize(raw())) in_raw.push_back({r.start, r.end});
  }
  ASSERT_TRUE(WriteLime(lime, raw(), in_raw));
  Mount m({"g=" + lime});
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<Range> expected;
  for (const Range& r : ram) {
    if (r.end <= FileSize(raw())) expected.push_back(r);
  }
  EXPECT_EQ(SeekRanges(m / "g/pmem"), expected);
  for (const Range& r : expected) {
    EXPECT_EQ(FirstDifference(m / "g/pmem", r.start, raw(), r.start, r.end - r.start), -1) << r;
  }
  EXPECT_EQ(InfoValue(ReadFile(m / "g/info"), "format"), "lime");
}

INSTANTIATE_TEST_SUITE_P(Guests, GuestSnapshotTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::testing
