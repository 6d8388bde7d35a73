// A drivers::Driver that forwards every call to an inner driver, counts the calls and injects
// the faults a test asks for: failing reads over an address range, reads that fail after a
// budget, a VM that goes away. A wrapper, so no real driver carries a testing flag.
//
// While reads can fail, zero copy must not get around the failure: Mapped() and FileBacked()
// stop short of a failing range (and offer nothing at all while a read budget is set), so a
// reader that prefers them falls back to ReadPhys where it fails.
//
// Thread safety: every method, any thread.
#ifndef VMEMFS_TESTING_FAULTY_DRIVER_H_
#define VMEMFS_TESTING_FAULTY_DRIVER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::testing {

class FaultyDriver : public drivers::Driver {
 public:
  // The calls counted, one counter each.
  enum class Call {
    kReadPhys,
    kWritePhys,
    kMapped,
    kFileBacked,
    kPause,
    kResume,
    kState,
    kRegisters,
    kSetRegister,
  };
  static constexpr size_t kCallKinds = static_cast<size_t>(Call::kSetRegister) + 1;

  explicit FaultyDriver(std::unique_ptr<drivers::Driver> inner);

  drivers::Driver& inner() { return *inner_; }

  // From now on, ReadPhys calls touching [range.start, range.end) fail with `error`; a kFault
  // error is given the first failing address. Several ranges may fail at once.
  void FailReads(drivers::PhysRange range, Status error);
  // The next `n` ReadPhys calls go through, every later one fails with `error`.
  void FailReadsAfter(uint64_t n, Status error);
  // The VM went away: State() is kGone, and ReadPhys, WritePhys, Pause, Resume, Registers and
  // SetRegister fail with kUnavailable at once, Mapped and FileBacked offer nothing. For good.
  void MakeGone();

  uint64_t calls(Call call) const { return calls_[static_cast<size_t>(call)].load(); }

  // drivers::Driver: forwarded, unless a fault says otherwise.
  std::string_view kind() const override { return inner_->kind(); }
  std::span<const drivers::PhysRange> ranges() const override { return inner_->ranges(); }
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override;
  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override;
  std::span<const std::byte> Mapped(uint64_t pa) const override;
  std::optional<drivers::FileExtent> FileBacked(uint64_t pa) const override;
  bool live() const override { return inner_->live(); }
  bool writable() const override { return inner_->writable(); }
  Status Pause() override;
  Status Resume() override;
  std::optional<drivers::RunState> State() override;
  unsigned vcpu_count() const override { return inner_->vcpu_count(); }
  Result<drivers::RegisterSet> Registers(unsigned vcpu) override;
  Status SetRegister(unsigned vcpu, drivers::Register reg, uint64_t value) override;
  std::vector<Fact> Describe() const override { return inner_->Describe(); }
  std::optional<std::string> VmcoreInfo() const override { return inner_->VmcoreInfo(); }

 private:
  struct FailingRange {
    drivers::PhysRange range;
    Status error;
  };

  void Count(Call call) const { ++calls_[static_cast<size_t>(call)]; }
  Status GoneError() const;
  // The injected error for a read of [pa, pa + len), or OK.
  Status ReadFault(uint64_t pa, uint64_t len);
  // How many bytes from `pa` zero copy may offer (0: none).
  uint64_t ZeroCopyLimit(uint64_t pa) const;

  const std::unique_ptr<drivers::Driver> inner_;
  std::atomic<bool> gone_{false};
  mutable std::mutex mu_;  // guards the faults below
  std::vector<FailingRange> failing_;
  std::optional<uint64_t> reads_left_;
  Status after_reads_error_;
  mutable std::array<std::atomic<uint64_t>, kCallKinds> calls_{};
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTING_FAULTY_DRIVER_H_
