// Guest RAM in this process, for tests, fuzzers and benchmarks: a drivers::Driver whose every
// answer is set by its user. RAM starts zeroed and is filled through Bytes/Put/FillPattern;
// registers, run state, VMCOREINFO text and the description come from Options.
//
// Faults (failing reads, a VM that goes away) are not modelled here: wrap the driver in a
// FaultyDriver (faulty_driver.h).
//
// Thread safety: the Driver methods may be called from many threads at once. The setup methods
// (Bytes, Put*, FillPattern) must not run while another thread reads or writes guest RAM.
#ifndef VMEMFS_TESTING_MEMORY_DRIVER_H_
#define VMEMFS_TESTING_MEMORY_DRIVER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/phys_map.h"

namespace vmemfs::testing {

class MemoryDriver : public drivers::Driver {
 public:
  // Every member has a default, so designated initializers name only what a test needs.
  struct Options {
    // Guest RAM: sorted, disjoint, non-empty ranges (anything else is a bug in the test: the
    // constructor aborts).
    std::vector<drivers::PhysRange> ranges = {};
    std::string kind = "memory";
    bool live = false;
    bool writable = false;     // WritePhys and SetRegister succeed
    bool mapped = false;       // Mapped() offers RAM zero copy
    uint64_t map_piece = 0;    // with `mapped`: spans end at multiples of this (0: at range end)
    bool file_backed = false;  // RAM lives in a memfd, and FileBacked() offers it for splice
    // Run state: nullopt for a source that does not run (a snapshot); Pause/Resume then fail
    // with kUnsupported. kGone is FaultyDriver::MakeGone's business.
    std::optional<drivers::RunState> state = {};
    std::vector<drivers::RegisterSet> vcpus = {};  // index = vCPU number
    std::optional<std::string> vmcoreinfo = {};
    std::vector<Fact> facts = {{"format", "memory"}};
  };

  explicit MemoryDriver(Options options);
  // RAM [0, size) and nothing else.
  explicit MemoryDriver(uint64_t size);
  ~MemoryDriver() override;

  // A byte that tells its address: (pa * 13 + 1) & 0xff, what FillPattern writes.
  static std::byte Pattern(uint64_t pa);

  // The RAM bytes [pa, pa + n), writable. REQUIRES: they lie in one range (else aborts).
  std::span<std::byte> Bytes(uint64_t pa, size_t n);
  void Put(uint64_t pa, const void* data, size_t n);
  void Put32(uint64_t pa, uint32_t value) { Put(pa, &value, sizeof value); }
  void Put64(uint64_t pa, uint64_t value) { Put(pa, &value, sizeof value); }
  // Every RAM byte set to Pattern(its address).
  void FillPattern();

  // As if someone else paused or resumed the VM. REQUIRES: Options::state was set, and
  // `state` is not kGone.
  void SetState(drivers::RunState state);
  // Pause() and Resume() calls so far, successful or not.
  int pause_calls() const { return pause_calls_.load(); }
  int resume_calls() const { return resume_calls_.load(); }

  // drivers::Driver
  std::string_view kind() const override { return options_.kind; }
  std::span<const drivers::PhysRange> ranges() const override { return runs_.ranges(); }
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override;
  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override;
  std::span<const std::byte> Mapped(uint64_t pa) const override;
  std::optional<drivers::FileExtent> FileBacked(uint64_t pa) const override;
  bool live() const override { return options_.live; }
  bool writable() const override { return options_.writable; }
  Status Pause() override;
  Status Resume() override;
  std::optional<drivers::RunState> State() override;
  unsigned vcpu_count() const override { return static_cast<unsigned>(options_.vcpus.size()); }
  Result<drivers::RegisterSet> Registers(unsigned vcpu) override;
  Status SetRegister(unsigned vcpu, drivers::Register reg, uint64_t value) override;
  std::vector<Fact> Describe() const override { return options_.facts; }
  std::optional<std::string> VmcoreInfo() const override { return options_.vmcoreinfo; }

 private:
  using Run = drivers::PhysRun<uint64_t>;  // value: offset of the run's bytes in ram_

  std::byte* Memory(const Run& run, uint64_t pa) const {
    return ram_.data() + run.value + (pa - run.start);
  }
  Status ChangeState(drivers::RunState to, std::atomic<int>& calls);

  Options options_;  // vcpus and state guarded by mu_
  drivers::PhysMap<uint64_t> runs_;
  std::span<std::byte> ram_;  // all ranges back to back: in vector_, or mapped from memfd_
  std::vector<std::byte> vector_;
  int memfd_ = -1;
  mutable std::mutex mu_;
  std::atomic<int> pause_calls_{0};
  std::atomic<int> resume_calls_{0};
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTING_MEMORY_DRIVER_H_
