#include "testing/memory_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace vmemfs::testing {
namespace {

using drivers::PhysRange;
using drivers::Register;
using drivers::RegisterSet;
using drivers::RunState;

MemoryDriver::Options TwoRanges() { return {.ranges = {{0x1000, 0x3000}, {0x8000, 0x9000}}}; }

TEST(MemoryDriverTest, RamReadsBackWhatWasPut) {
  MemoryDriver d(TwoRanges());
  EXPECT_EQ(d.kind(), "memory");
  EXPECT_EQ(d.ranges().size(), 2u);
  EXPECT_EQ(d.end_address(), 0x9000u);
  d.Put64(0x2ffc - 4, 0x1122334455667788);
  uint64_t v = 0;
  ASSERT_TRUE(d.ReadPhys(0x2ff8, std::as_writable_bytes(std::span(&v, 1))).ok());
  EXPECT_EQ(v, 0x1122334455667788u);
  std::vector<std::byte> buf(16);
  EXPECT_TRUE(d.ReadPhys(0x8000, buf).ok());
  Status hole = d.ReadPhys(0x2ff8, buf);
  EXPECT_EQ(hole.code(), ErrorCode::kFault);
  EXPECT_EQ(hole.address(), 0x3000u);
}

TEST(MemoryDriverTest, PatternTellsTheAddress) {
  MemoryDriver d(TwoRanges());
  d.FillPattern();
  std::vector<std::byte> buf(0x100);
  ASSERT_TRUE(d.ReadPhys(0x8080, buf).ok());
  for (size_t i = 0; i < buf.size(); ++i) EXPECT_EQ(buf[i], MemoryDriver::Pattern(0x8080 + i));
}

TEST(MemoryDriverTest, WritesOnlyWhenWritable) {
  const std::byte one[1] = {std::byte{7}};
  MemoryDriver ro(0x1000);
  EXPECT_EQ(ro.WritePhys(0, one).code(), ErrorCode::kUnsupported);
  MemoryDriver rw(MemoryDriver::Options{.ranges = {{0, 0x1000}}, .writable = true});
  ASSERT_TRUE(rw.WritePhys(0x10, one).ok());
  EXPECT_EQ(rw.Bytes(0x10, 1)[0], std::byte{7});
  EXPECT_EQ(rw.WritePhys(0x1000, one).code(), ErrorCode::kFault);
}

TEST(MemoryDriverTest, ZeroCopyOnlyWhenAsked) {
  MemoryDriver plain(0x4000);
  EXPECT_TRUE(plain.Mapped(0).empty());
  EXPECT_FALSE(plain.FileBacked(0));

  MemoryDriver mapped(
      MemoryDriver::Options{.ranges = {{0, 0x4000}}, .mapped = true, .map_piece = 0x1000});
  mapped.Put32(0x1ffc, 0xabcd);
  EXPECT_EQ(mapped.Mapped(0x1800).size(), 0x800u);  // to the end of its piece
  EXPECT_EQ(mapped.Mapped(0x1ffc)[0], std::byte{0xcd});
  EXPECT_TRUE(mapped.Mapped(0x4000).empty());

  MemoryDriver file(
      MemoryDriver::Options{.ranges = {{0x1000, 0x3000}, {0x5000, 0x6000}}, .file_backed = true});
  file.Put32(0x5010, 0x12345678);
  std::optional<drivers::FileExtent> extent = file.FileBacked(0x5010);
  ASSERT_TRUE(extent);
  EXPECT_EQ(extent->offset, 0x2010u);  // ranges back to back in the file
  EXPECT_EQ(extent->length, 0xff0u);
  uint32_t v = 0;
  ASSERT_EQ(pread(extent->fd, &v, 4, static_cast<off_t>(extent->offset)), 4);
  EXPECT_EQ(v, 0x12345678u);
}

TEST(MemoryDriverTest, RunStateRecordsPauseAndResume) {
  MemoryDriver snapshot(0x1000);
  EXPECT_EQ(snapshot.State(), std::nullopt);
  EXPECT_EQ(snapshot.Pause().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(snapshot.pause_calls(), 1);

  MemoryDriver live(
      MemoryDriver::Options{.ranges = {{0, 0x1000}}, .live = true, .state = RunState::kRunning});
  EXPECT_TRUE(live.live());
  ASSERT_TRUE(live.Pause().ok());
  EXPECT_EQ(live.State(), RunState::kPaused);
  ASSERT_TRUE(live.Resume().ok());
  ASSERT_TRUE(live.Resume().ok());
  EXPECT_EQ(live.State(), RunState::kRunning);
  EXPECT_EQ(live.pause_calls(), 1);
  EXPECT_EQ(live.resume_calls(), 2);
  live.SetState(RunState::kPaused);  // someone else paused it
  EXPECT_EQ(live.State(), RunState::kPaused);
}

TEST(MemoryDriverTest, RegistersVmcoreInfoAndFacts) {
  RegisterSet regs;
  regs.Set(Register::kCr3, 0x1000);
  MemoryDriver d(MemoryDriver::Options{.ranges = {{0, 0x1000}},
                                       .writable = true,
                                       .vcpus = {regs, RegisterSet()},
                                       .vmcoreinfo = "OSRELEASE=6.1\n",
                                       .facts = {{"format", "test", "made by hand"}}});
  EXPECT_EQ(d.vcpu_count(), 2u);
  EXPECT_EQ(d.Registers(0)->Get(Register::kCr3), 0x1000u);
  EXPECT_EQ(d.Registers(2).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(d.SetRegister(1, Register::kRip, 0xffff).ok());
  EXPECT_EQ(d.Registers(1)->Get(Register::kRip), 0xffffu);
  EXPECT_EQ(d.VmcoreInfo(), "OSRELEASE=6.1\n");
  EXPECT_EQ(d.Describe(), (std::vector<Fact>{{"format", "test", "made by hand"}}));
}

TEST(MemoryDriverDeathTest, BadSetupIsABug) {
  EXPECT_DEATH(MemoryDriver(MemoryDriver::Options{.ranges = {{0x2000, 0x3000}, {0, 0x1000}}}),
               "out of order");
  MemoryDriver d(0x1000);
  EXPECT_DEATH(d.Bytes(0xff0, 0x20), "not inside one RAM range");
}

}  // namespace
}  // namespace vmemfs::testing
