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

}  // namespace
}  // namespace vmemfs::fs
