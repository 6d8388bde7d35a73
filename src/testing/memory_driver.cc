#include "testing/memory_driver.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/checked.h"
#include "base/hex.h"

namespace vmemfs::testing {
namespace {

using drivers::PhysRange;
using drivers::RunState;

// A mistake in a test's setup, not a condition to report.
[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "MemoryDriver: %s\n", why.c_str());
  std::abort();
}

std::vector<drivers::PhysRun<uint64_t>> RunsOf(const std::vector<PhysRange>& ranges) {
  std::vector<drivers::PhysRun<uint64_t>> runs;
  uint64_t offset = 0;
  for (const PhysRange& r : ranges) {
    runs.push_back({r.start, r.end, offset});
    offset += r.end - r.start;
  }
  return runs;
}

}  // namespace

MemoryDriver::MemoryDriver(Options options) : options_(std::move(options)) {
  Result<drivers::PhysMap<uint64_t>> runs =
      drivers::PhysMap<uint64_t>::Create(RunsOf(options_.ranges));
  if (!runs) Die(runs.error().ToString());
  runs_ = *std::move(runs);
  uint64_t size = 0;
  for (const PhysRange& r : options_.ranges) size += r.size();
  if (!options_.file_backed) {
    vector_.resize(size);
    ram_ = vector_;
    return;
  }
  memfd_ = memfd_create("vmemfs-memory-driver", MFD_CLOEXEC);
  if (memfd_ < 0 || ftruncate(memfd_, static_cast<off_t>(size)) != 0) Die("memfd");
  if (size == 0) return;
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (map == MAP_FAILED) Die("mmap of " + std::to_string(size) + " bytes");
  ram_ = {static_cast<std::byte*>(map), size};
}

MemoryDriver::MemoryDriver(uint64_t size) : MemoryDriver(Options{.ranges = {{0, size}}}) {}

MemoryDriver::~MemoryDriver() {
  if (memfd_ < 0) return;
  if (!ram_.empty()) munmap(ram_.data(), ram_.size());
  close(memfd_);
}

std::byte MemoryDriver::Pattern(uint64_t pa) { return std::byte((pa * 13 + 1) & 0xff); }

std::span<std::byte> MemoryDriver::Bytes(uint64_t pa, size_t n) {
  const Run* run = runs_.Find(pa);
  if (run == nullptr || n > run->end - pa) {
    Die("[" + Hex(pa) + ", +" + Hex(n) + ") is not inside one RAM range");
  }
  return {Memory(*run, pa), n};
}

void MemoryDriver::Put(uint64_t pa, const void* data, size_t n) {
  std::memcpy(Bytes(pa, n).data(), data, n);
}

void MemoryDriver::FillPattern() {
  for (const Run& run : runs_) {
    for (uint64_t pa = run.start; pa < run.end; ++pa) *Memory(run, pa) = Pattern(pa);
  }
}

Status MemoryDriver::ReadPhys(uint64_t pa, std::span<std::byte> out) {
  return runs_.ForEachPiece(pa, out.size(),
                            [&](const Run& run, uint64_t at, uint64_t done, uint64_t n) {
                              std::memcpy(out.data() + done, Memory(run, at), n);
                              return Status();
                            });
}

Status MemoryDriver::WritePhys(uint64_t pa, std::span<const std::byte> in) {
  if (!options_.writable) return UnsupportedError("memory driver is read-only");
  return runs_.ForEachPiece(pa, in.size(),
                            [&](const Run& run, uint64_t at, uint64_t done, uint64_t n) {
                              std::memcpy(Memory(run, at), in.data() + done, n);
                              return Status();
                            });
}

std::span<const std::byte> MemoryDriver::Mapped(uint64_t pa) const {
  const Run* run = options_.mapped ? runs_.Find(pa) : nullptr;
  if (run == nullptr) return {};
  uint64_t end = run->end;
  if (const uint64_t piece = options_.map_piece; piece != 0) {
    if (const std::optional<uint64_t> next = CheckedAdd(pa - pa % piece, piece)) {
      end = std::min(end, *next);
    }
  }
  return {Memory(*run, pa), static_cast<size_t>(end - pa)};
}

std::optional<drivers::FileExtent> MemoryDriver::FileBacked(uint64_t pa) const {
  const Run* run = options_.file_backed ? runs_.Find(pa) : nullptr;
  if (run == nullptr) return std::nullopt;
  return drivers::FileExtent{memfd_, run->value + (pa - run->start), run->end - pa};
}

Status MemoryDriver::ChangeState(RunState to, std::atomic<int>& calls) {
  ++calls;
  std::lock_guard lock(mu_);
  if (!options_.state) return UnsupportedError("memory driver has no run state");
  options_.state = to;
  return Status();
}

Status MemoryDriver::Pause() { return ChangeState(RunState::kPaused, pause_calls_); }
Status MemoryDriver::Resume() { return ChangeState(RunState::kRunning, resume_calls_); }

void MemoryDriver::SetState(RunState state) {
  std::lock_guard lock(mu_);
  if (!options_.state || state == RunState::kGone) Die("SetState needs a run state, not gone");
  options_.state = state;
}

std::optional<RunState> MemoryDriver::State() {
  std::lock_guard lock(mu_);
  return options_.state;
}

Result<drivers::RegisterSet> MemoryDriver::Registers(unsigned vcpu) {
  std::lock_guard lock(mu_);
  if (vcpu >= options_.vcpus.size()) {
    return NotFoundError("no registers for vCPU " + std::to_string(vcpu));
  }
  return options_.vcpus[vcpu];
}

Status MemoryDriver::SetRegister(unsigned vcpu, drivers::Register reg, uint64_t value) {
  if (!options_.writable) return UnsupportedError("memory driver is read-only");
  std::lock_guard lock(mu_);
  if (vcpu >= options_.vcpus.size()) return NotFoundError("no vCPU " + std::to_string(vcpu));
  options_.vcpus[vcpu].Set(reg, value);
  return Status();
}

}  // namespace vmemfs::testing
