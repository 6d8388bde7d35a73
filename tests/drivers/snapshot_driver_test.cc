#include "drivers/snapshot_driver.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::BuildElf;
using testing::BuildLime;
using testing::Bytes;
using testing::Pattern;
using testing::SampleElf64;
using testing::TempDir;

class SnapshotDriverTest : public ::testing::Test {
 protected:
  std::unique_ptr<Driver> Open(const std::string& path, bool writable = false) {
    auto d = OpenSnapshot(path, OpenOptions{.writable = writable});
    EXPECT_TRUE(d) << d.error().ToString();
    return d ? *std::move(d) : nullptr;
  }

  static Bytes Read(Driver& d, uint64_t pa, size_t n) {
    Bytes out(n);
    Status s = d.ReadPhys(pa, out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  static Bytes Slice(const Bytes& b, size_t off, size_t n) {
    return Bytes(b.begin() + off, b.begin() + off + n);
  }

  TempDir dir_;
};

TEST_F(SnapshotDriverTest, ElfCoreRangesMergeFileContiguousSegments) {
  auto d = Open(dir_.Write("core.elf", BuildElf(SampleElf64())));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind(), "snapshot");
  // [0,0x1000) and [0x1000,0x3000) are back to back in the file: one range.
  ASSERT_EQ(d->ranges().size(), 2u);
  EXPECT_EQ(d->ranges()[0], (PhysRange{0, 0x3000}));
  EXPECT_EQ(d->ranges()[1], (PhysRange{0x10000, 0x11000}));
  EXPECT_EQ(d->end_address(), 0x11000u);
  EXPECT_FALSE(d->writable());
  EXPECT_FALSE(d->live());
}

// QEMU dumps its BIOS ROM as a PT_LOAD at 0xfffc0000: with nothing above it, it is not RAM
// and pmem ends with the RAM; below RAM (a guest with RAM above 4 GiB) it stays readable.
TEST_F(SnapshotDriverTest, ElfFirmwareAtTheResetVectorIsRom) {
  testing::ElfSpec spec = SampleElf64();
  spec.loads.push_back({0xfffc0000, Pattern(0x40000, 4)});
  auto d = Open(dir_.Write("core.elf", BuildElf(spec)));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->end_address(), 0x11000u);
  ASSERT_EQ(d->rom().size(), 1u);
  EXPECT_EQ(d->rom()[0].start, 0xfffc0000u);
  EXPECT_EQ(d->rom()[0].end, 0x100000000u);
  EXPECT_FALSE(d->rom()[0].in_ranges);
  Bytes b(1);
  EXPECT_EQ(d->ReadPhys(0xfffc0000, b).code(), ErrorCode::kFault);

  spec.loads.push_back({0x100000000, Pattern(0x1000, 5)});
  auto above = Open(dir_.Write("above.elf", BuildElf(spec)));
  ASSERT_TRUE(above);
  EXPECT_EQ(above->end_address(), 0x100001000u);
  ASSERT_EQ(above->rom().size(), 1u);
  EXPECT_TRUE(above->rom()[0].in_ranges);
  EXPECT_EQ(Read(*above, 0xfffc0000, 4), Slice(Pattern(0x40000, 4), 0, 4));
  // A raw file is RAM from 0 and marks nothing.
  auto raw = Open(dir_.Write("raw.mem", Pattern(0x2000, 6)));
  ASSERT_TRUE(raw);
  EXPECT_TRUE(raw->rom().empty());
}

TEST_F(SnapshotDriverTest, ReadsAcrossSegmentBoundary) {
  auto d = Open(dir_.Write("core.elf", BuildElf(SampleElf64())));
  ASSERT_TRUE(d);
  Bytes first = Pattern(0x1000, 1), second = Pattern(0x2000, 2);
  Bytes got = Read(*d, 0xff0, 0x20);
  EXPECT_EQ(Slice(got, 0, 0x10), Slice(first, 0xff0, 0x10));
  EXPECT_EQ(Slice(got, 0x10, 0x10), Slice(second, 0, 0x10));
  EXPECT_EQ(Read(*d, 0x10010, 4), Slice(Pattern(0x1000, 3), 0x10, 4));
}

TEST_F(SnapshotDriverTest, ReadsAcrossPhysicallyAdjacentButFileSeparateSegments) {
  testing::ElfSpec spec;
  spec.loads.push_back({0x2000, Pattern(0x1000, 7)});
  spec.loads.push_back({0x1000, Pattern(0x1000, 8)});  // before it in RAM, after it in file
  auto d = Open(dir_.Write("split.elf", BuildElf(spec)));
  ASSERT_TRUE(d);
  ASSERT_EQ(d->ranges().size(), 2u);
  Bytes got = Read(*d, 0x1ffe, 4);
  EXPECT_EQ(Slice(got, 0, 2), Slice(Pattern(0x1000, 8), 0xffe, 2));
  EXPECT_EQ(Slice(got, 2, 2), Slice(Pattern(0x1000, 7), 0, 2));
}

TEST_F(SnapshotDriverTest, FaultsNameFirstByteOutsideRam) {
  auto d = Open(dir_.Write("core.elf", BuildElf(SampleElf64())));
  ASSERT_TRUE(d);
  Bytes out(0x10);
  Status s = d->ReadPhys(0x2ff8, out);
  EXPECT_EQ(s.code(), ErrorCode::kFault);
  EXPECT_EQ(s.address(), 0x3000u);
  s = d->ReadPhys(0x5000, out);
  EXPECT_EQ(s.address(), 0x5000u);
  s = d->ReadPhys(0xfffffffffffffff8, out);
  EXPECT_EQ(s.code(), ErrorCode::kFault);
  EXPECT_TRUE(d->ReadPhys(0x5000, {}).ok());  // nothing to read, nothing to fault on
}

TEST_F(SnapshotDriverTest, MappedAndFileBackedReturnRestOfRun) {
  Bytes file = BuildElf(SampleElf64());
  auto d = Open(dir_.Write("core.elf", file));
  ASSERT_TRUE(d);
  auto m = d->Mapped(0x800);
  ASSERT_EQ(m.size(), 0x2800u);
  EXPECT_EQ(std::memcmp(m.data(), Pattern(0x1000, 1).data() + 0x800, 0x800), 0);
  EXPECT_TRUE(d->Mapped(0x3000).empty());
  auto fb = d->FileBacked(0x10100);
  ASSERT_TRUE(fb.has_value());
  EXPECT_EQ(fb->length, 0xf00u);
  Bytes via_fd(4);
  ASSERT_EQ(pread(fb->fd, via_fd.data(), 4, static_cast<off_t>(fb->offset)), 4);
  EXPECT_EQ(via_fd, Slice(Pattern(0x1000, 3), 0x100, 4));
  EXPECT_FALSE(d->FileBacked(0x3000).has_value());
}

TEST_F(SnapshotDriverTest, RegistersVmcoreInfoAndDescribe) {
  auto d = Open(dir_.Write("core.elf", BuildElf(SampleElf64())));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->vcpu_count(), 2u);
  auto regs = d->Registers(1);
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->Get(Register::kCr3), 0x5678000u);
  EXPECT_EQ(d->Registers(2).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(d->VmcoreInfo(), "OSRELEASE=6.1.0\nPAGESIZE=4096\n");
  auto info = d->Describe();
  ASSERT_GE(info.size(), 4u);
  EXPECT_EQ(info[0], (Fact{"format", "elf64", "ELF magic"}));
  EXPECT_EQ(info[2], (Fact{"segments", "3"}));
  EXPECT_EQ(info[3].key, "file-watch");  // how a change of the file would be noticed
}

TEST_F(SnapshotDriverTest, WritesOnlyWhenWritable) {
  const std::string path = dir_.Write("core.elf", BuildElf(SampleElf64()));
  const std::array<std::byte, 4> data = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  {
    auto ro = Open(path);
    ASSERT_TRUE(ro);
    EXPECT_EQ(ro->WritePhys(0x100, data).code(), ErrorCode::kUnsupported);
  }
  {
    auto rw = Open(path, /*writable=*/true);
    ASSERT_TRUE(rw);
    EXPECT_TRUE(rw->writable());
    ASSERT_TRUE(rw->WritePhys(0xffe, data).ok());  // crosses into the second segment
    EXPECT_EQ(Read(*rw, 0xffe, 4), Bytes(data.begin(), data.end()));
    EXPECT_EQ(rw->WritePhys(0x2ffe, data).address(), 0x3000u);
  }
  auto again = Open(path);  // the write went to the file
  ASSERT_TRUE(again);
  EXPECT_EQ(Read(*again, 0xffe, 4), Bytes(data.begin(), data.end()));
}

TEST_F(SnapshotDriverTest, LimeAndRaw) {
  auto lime = Open(dir_.Write("mem.lime", BuildLime({{0x1000, Pattern(0x100, 4)}})));
  ASSERT_TRUE(lime);
  EXPECT_EQ(lime->ranges()[0], (PhysRange{0x1000, 0x1100}));
  EXPECT_EQ(Read(*lime, 0x10fc, 4), Slice(Pattern(0x100, 4), 0xfc, 4));
  EXPECT_EQ(lime->vcpu_count(), 0u);
  EXPECT_FALSE(lime->VmcoreInfo().has_value());

  auto raw = Open(dir_.Write("mem.raw", Pattern(0x3000, 9)));
  ASSERT_TRUE(raw);
  ASSERT_EQ(raw->ranges().size(), 1u);
  EXPECT_EQ(raw->ranges()[0], (PhysRange{0, 0x3000}));
  EXPECT_EQ(Read(*raw, 0x2ffc, 4), Slice(Pattern(0x3000, 9), 0x2ffc, 4));
  EXPECT_EQ(raw->Describe()[0].value, "raw");
}

TEST_F(SnapshotDriverTest, OpenErrorsNameThePath) {
  auto missing = OpenSnapshot(dir_.path() + "/nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kOs);
  EXPECT_NE(missing.error().message().find("/nope"), std::string::npos);

  auto empty = OpenSnapshot(dir_.Write("empty", Bytes{}), {});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kBadData);

  auto directory = OpenSnapshot(dir_.path(), {});
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code(), ErrorCode::kInvalidArgument);  // never opened
  EXPECT_NE(directory.error().message().find("directory"), std::string::npos);
  EXPECT_FALSE(OpenSnapshot(dir_.path(), {.writable = true}));

  Bytes bad = BuildElf(SampleElf64());
  testing::PutAt<uint64_t>(bad, 64 + 56 + 32, 0x100000);  // first PT_LOAD's p_filesz
  auto corrupt = OpenSnapshot(dir_.Write("core.elf", bad), {});
  ASSERT_FALSE(corrupt);
  EXPECT_EQ(corrupt.error().message().rfind(dir_.path() + "/core.elf: ELF program header 1", 0), 0u)
      << corrupt.error().message();
}

TEST_F(SnapshotDriverTest, ElfWithoutRamIsRejected) {
  testing::ElfSpec spec;
  spec.notes.push_back({"CORE", 1, testing::Prstatus64(0)});
  auto d = OpenSnapshot(dir_.Write("noram.elf", BuildElf(spec)), {});
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("no guest RAM"), std::string::npos);
}

}  // namespace
}  // namespace vmemfs::drivers
