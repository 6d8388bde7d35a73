#include "testing/faulty_driver.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "testing/memory_driver.h"

namespace vmemfs::testing {
namespace {

using drivers::RunState;
using Call = FaultyDriver::Call;

// RAM [0, 0x10000), mapped and file backed, filled with the pattern, running.
std::unique_ptr<FaultyDriver> Make() {
  auto memory = std::make_unique<MemoryDriver>(MemoryDriver::Options{
      .ranges = {{0, 0x10000}},
      .live = true,
      .mapped = true,
      .file_backed = true,
      .state = RunState::kRunning,
      .vcpus = {drivers::RegisterSet()},
  });
  memory->FillPattern();
  return std::make_unique<FaultyDriver>(std::move(memory));
}

TEST(FaultyDriverTest, ForwardsEverythingWithoutFaults) {
  auto d = Make();
  std::vector<std::byte> buf(16);
  ASSERT_TRUE(d->ReadPhys(0x100, buf).ok());
  EXPECT_EQ(buf[0], MemoryDriver::Pattern(0x100));
  EXPECT_EQ(d->kind(), "memory");
  EXPECT_EQ(d->end_address(), 0x10000u);
  EXPECT_EQ(d->Mapped(0x100).size(), 0xff00u);
  EXPECT_EQ(d->FileBacked(0x100)->length, 0xff00u);
  EXPECT_EQ(d->State(), RunState::kRunning);
  EXPECT_TRUE(d->Pause().ok());
  EXPECT_EQ(d->State(), RunState::kPaused);
  EXPECT_TRUE(d->Registers(0));
  EXPECT_EQ(d->calls(Call::kReadPhys), 1u);
  EXPECT_EQ(d->calls(Call::kState), 2u);
  EXPECT_EQ(d->calls(Call::kPause), 1u);
  EXPECT_EQ(d->calls(Call::kResume), 0u);
}

TEST(FaultyDriverTest, ReadsTouchingARangeFail) {
  auto d = Make();
  d->FailReads({0x2000, 0x2001}, OsError("injected", EIO));
  d->FailReads({0x4000, 0x5000}, FaultError(0, "injected fault"));
  std::vector<std::byte> buf(0x100);
  EXPECT_TRUE(d->ReadPhys(0x1f00, buf).ok());
  Status eio = d->ReadPhys(0x1f80, buf);
  EXPECT_EQ(eio.code(), ErrorCode::kOs);
  EXPECT_EQ(eio.os_errno(), EIO);
  Status fault = d->ReadPhys(0x3f80, buf);
  EXPECT_EQ(fault.code(), ErrorCode::kFault);
  EXPECT_EQ(fault.address(), 0x4000u);
  // Zero copy stops short of a failing range and offers nothing inside one.
  EXPECT_EQ(d->Mapped(0x1000).size(), 0x1000u);
  EXPECT_EQ(d->FileBacked(0x1000)->length, 0x1000u);
  EXPECT_TRUE(d->Mapped(0x2000).empty());
  EXPECT_FALSE(d->FileBacked(0x4800));
  EXPECT_EQ(d->Mapped(0x5000).size(), 0xb000u);
}

TEST(FaultyDriverTest, ReadsFailAfterABudget) {
  auto d = Make();
  d->FailReadsAfter(2, UnavailableError("injected"));
  std::vector<std::byte> buf(8);
  EXPECT_TRUE(d->ReadPhys(0, buf).ok());
  EXPECT_TRUE(d->Mapped(0).empty());  // every read must come through ReadPhys
  EXPECT_TRUE(d->ReadPhys(0, buf).ok());
  EXPECT_EQ(d->ReadPhys(0, buf).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->ReadPhys(0, buf).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->calls(Call::kReadPhys), 4u);
}

TEST(FaultyDriverTest, GoneVmFailsEverythingAtOnce) {
  auto d = Make();
  d->MakeGone();
  std::vector<std::byte> buf(8);
  EXPECT_EQ(d->State(), RunState::kGone);
  EXPECT_EQ(d->ReadPhys(0, buf).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->WritePhys(0, buf).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->Pause().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->Resume().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->Registers(0).error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(d->Mapped(0).empty());
  EXPECT_FALSE(d->FileBacked(0));
  // The inner driver never heard of it.
  auto& memory = static_cast<MemoryDriver&>(d->inner());
  EXPECT_EQ(memory.pause_calls(), 0);
  EXPECT_EQ(memory.State(), RunState::kRunning);
}

}  // namespace
}  // namespace vmemfs::testing
