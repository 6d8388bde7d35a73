// An in-memory driver for fs tests: RAM ranges over a byte vector, with injectable I/O errors.
#ifndef VMEMFS_TESTS_FS_FAKE_DRIVER_H_
#define VMEMFS_TESTS_FS_FAKE_DRIVER_H_

#include <cerrno>
#include <cstring>
#include <vector>

#include "drivers/driver.h"

namespace vmemfs::testing {

class FakeDriver : public drivers::Driver {
 public:
  // RAM is `ranges`; byte at physical address a has value (a * 13 + 1) & 0xff.
  explicit FakeDriver(std::vector<drivers::PhysRange> ranges) : ranges_(std::move(ranges)) {}

  // Reads touching [start, end) fail with EIO, as a failing disk or a dead VM would.
  void FailReads(uint64_t start, uint64_t end) { fail_ = {start, end}; }

  static std::byte ByteAt(uint64_t a) { return std::byte((a * 13 + 1) & 0xff); }

  std::string_view kind() const override { return "fake"; }
  std::span<const drivers::PhysRange> ranges() const override { return ranges_; }
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    for (size_t i = 0; i < out.size(); ++i) {
      uint64_t a = pa + i;
      bool ram = false;
      for (const auto& r : ranges_) ram = ram || (a >= r.start && a < r.end);
      if (!ram) return FaultError(a);
      if (a >= fail_.start && a < fail_.end) return OsError("fake read", EIO);
      out[i] = ByteAt(a);
    }
    return Status();
  }
  std::vector<Fact> Describe() const override { return {{"format", "fake"}}; }

 private:
  std::vector<drivers::PhysRange> ranges_;
  drivers::PhysRange fail_{0, 0};
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_FS_FAKE_DRIVER_H_
