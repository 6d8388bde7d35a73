#include "fs/memory_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "testing/faulty_driver.h"
#include "testing/memory_driver.h"

namespace vmemfs::fs {
namespace {

using testing::FaultyDriver;
using testing::MemoryDriver;

// Flattens a plan into bytes (file pieces do not occur with the fake driver).
std::vector<std::byte> Bytes(const ReadPlan& plan) {
  std::vector<std::byte> out;
  for (const ReadPiece& p : plan.pieces()) {
    EXPECT_NE(p.kind, ReadPiece::Kind::kFile);
    if (p.kind == ReadPiece::Kind::kZeros) {
      out.insert(out.end(), p.length, std::byte{0});
    } else {
      auto* b = static_cast<const std::byte*>(p.data);
      out.insert(out.end(), b, b + p.length);
    }
  }
  return out;
}

class PhysicalMemoryFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = std::make_unique<MemoryDriver>(
        MemoryDriver::Options{.ranges = {{0, 0x3000}, {0x5000, 0x8000}}});
    memory->FillPattern();
    auto driver = std::make_unique<FaultyDriver>(std::move(memory));
    fake_ = driver.get();
    guest_ = std::move(*vmi::Guest::Open(std::move(driver)));
    file_ = MakePhysicalMemoryFile(*guest_);
    handle_ = std::move(*file_->Open());
  }
  FaultyDriver* fake_;
  std::unique_ptr<vmi::Guest> guest_;
  std::unique_ptr<File> file_;
  std::unique_ptr<Handle> handle_;
};

TEST_F(PhysicalMemoryFileTest, SizeIsTheEndOfRam) { EXPECT_EQ(file_->Size(), 0x8000u); }

TEST_F(PhysicalMemoryFileTest, DataBytesAreTheRam) { EXPECT_EQ(file_->DataBytes(), 0x6000u); }

TEST_F(PhysicalMemoryFileTest, GapsReadAsZerosBetweenRam) {
  ReadPlan plan;
  ASSERT_TRUE(handle_->Read(0x2ff0, 0x2020, plan).ok());
  auto bytes = Bytes(plan);
  ASSERT_EQ(bytes.size(), 0x2020u);
  for (uint64_t i = 0; i < bytes.size(); ++i) {
    uint64_t a = 0x2ff0 + i;
    bool ram = a < 0x3000 || a >= 0x5000;
    ASSERT_EQ(bytes[i], ram ? MemoryDriver::Pattern(a) : std::byte{0}) << std::hex << a;
  }
}

TEST_F(PhysicalMemoryFileTest, ReadsStopAtTheEndOfTheFile) {
  ReadPlan plan;
  ASSERT_TRUE(handle_->Read(0x7ff0, 4096, plan).ok());
  EXPECT_EQ(plan.total(), 0x10u);
  ReadPlan past;
  ASSERT_TRUE(handle_->Read(0x9000, 4096, past).ok());
  EXPECT_TRUE(past.empty());
}

TEST_F(PhysicalMemoryFileTest, AnIoErrorAtTheFirstByteIsAnError) {
  fake_->FailReads({0x1000, 0x1001}, OsError("fake read", EIO));
  ReadPlan plan;
  Status s = handle_->Read(0x1000, 16, plan);
  EXPECT_EQ(s.code(), ErrorCode::kOs);
  EXPECT_EQ(s.os_errno(), EIO);
}

TEST_F(PhysicalMemoryFileTest, AnIoErrorLaterShortensTheRead) {
  // The failing byte is in the second RAM range; the first range and the gap are served.
  fake_->FailReads({0x5000, 0x5001}, OsError("fake read", EIO));
  ReadPlan plan;
  ASSERT_TRUE(handle_->Read(0x2000, 0x4000, plan).ok());
  EXPECT_EQ(plan.total(), 0x3000u);  // [0x2000, 0x5000)
}

// A source that lost bytes (a snapshot file cut short, a VM gone) is no end of file: a short
// read would make the kernel take the file for shorter than it is.
TEST_F(PhysicalMemoryFileTest, LostBytesFailTheWholeRead) {
  fake_->FailReads({0x5000, 0x5001}, UnavailableError("the snapshot file lost these bytes"));
  ReadPlan plan;
  Status s = handle_->Read(0x2000, 0x4000, plan);
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable) << s.ToString();
  ReadPlan before;
  ASSERT_TRUE(handle_->Read(0x2000, 0x1000, before).ok());
  EXPECT_EQ(before.total(), 0x1000u);
}

TEST_F(PhysicalMemoryFileTest, SeekDataAndHoleFollowTheRamRanges) {
  EXPECT_EQ(*handle_->Seek(0, SEEK_DATA), 0u);
  EXPECT_EQ(*handle_->Seek(0, SEEK_HOLE), 0x3000u);
  EXPECT_EQ(*handle_->Seek(0x3000, SEEK_DATA), 0x5000u);
  EXPECT_EQ(*handle_->Seek(0x3800, SEEK_HOLE), 0x3800u);
  EXPECT_EQ(*handle_->Seek(0x5800, SEEK_HOLE), 0x8000u);
  EXPECT_EQ(handle_->Seek(0x8000, SEEK_DATA).error().code(), ErrorCode::kNotFound);
}

TEST_F(PhysicalMemoryFileTest, WritesAreRefusedWhenReadOnly) {
  std::byte b{1};
  EXPECT_FALSE(handle_->Write(0, std::span(&b, 1)).has_value());
}

// A kernel-style space: PML4 at 0x10000, one PDPT, PD and PT; RAM [0, 1 MiB) and [2, 3 MiB).
class VirtualMemoryFileTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRoot = 0x10000, kPdpt = 0x11000, kPd = 0x12000, kPt = 0x13000;
  static constexpr uint64_t kPresent = 1;

  void SetUp() override {
    auto memory = std::make_unique<MemoryDriver>(
        MemoryDriver::Options{.ranges = {{0, 1 << 20}, {2 << 20, 3 << 20}}});
    ram_ = memory.get();
    ram_->Put64(kRoot, kPdpt | kPresent);
    ram_->Put64(kPdpt, kPd | kPresent);
    ram_->Put64(kPd, kPt | kPresent);
    // VA 0x1000 and 0x2000: RAM; 0x3000: beyond RAM (a device); 0x4000: RAM in the 2nd range.
    ram_->Put64(kPt + 1 * 8, 0x50000 | kPresent);
    ram_->Put64(kPt + 2 * 8, 0x51000 | kPresent);
    ram_->Put64(kPt + 3 * 8, (1 << 20) | kPresent);
    ram_->Put64(kPt + 4 * 8, (2 << 20) | kPresent);
    guest_ = std::move(*vmi::Guest::Open(std::move(memory)));
  }
  SpaceSource Space() const {
    return [] {
      return Result<vmi::AddressSpace>(vmi::AddressSpace{vmi::PagingMode::kIa32e4, kRoot});
    };
  }

  MemoryDriver* ram_;
  std::unique_ptr<vmi::Guest> guest_;
};

TEST_F(VirtualMemoryFileTest, DataBytesAreTheMappedRamPages) {
  auto whole = MakeVirtualMemoryFile(*guest_, vmi::PagingMode::kIa32e4, Space());
  EXPECT_EQ(whole->Size(), 1ull << 48);
  EXPECT_EQ(whole->DataBytes(), 3 * 4096u);
  auto window = MakeVirtualWindowFile(*guest_, vmi::PagingMode::kIa32e4, Space(), 0x1800, 0x3000);
  EXPECT_EQ(window->DataBytes(), 0x800u + 0x1000 + 0x800);  // 0x3000 maps a device
}

TEST_F(VirtualMemoryFileTest, DataBytesAreCountedOncePerGeneration) {
  auto file = MakeVirtualMemoryFile(*guest_, vmi::PagingMode::kIa32e4, Space());
  EXPECT_EQ(file->DataBytes(), 3 * 4096u);
  ram_->Put64(kPt + 5 * 8, 0x52000 | kPresent);
  EXPECT_EQ(file->DataBytes(), 3 * 4096u);  // a snapshot's generation does not move
  guest_->Flush();
  EXPECT_EQ(file->DataBytes(), 4 * 4096u);
}

}  // namespace
}  // namespace vmemfs::fs
