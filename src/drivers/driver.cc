#include "drivers/driver.h"

namespace vmemfs::drivers {

Status Driver::WritePhys(uint64_t, std::span<const std::byte>) {
  return UnsupportedError(std::string(kind()) + " source is read-only");
}

std::span<const std::byte> Driver::Mapped(uint64_t) const { return {}; }

std::optional<FileExtent> Driver::FileBacked(uint64_t) const { return std::nullopt; }

Status Driver::Pause() { return UnsupportedError(std::string(kind()) + " source cannot pause"); }

Status Driver::Resume() { return UnsupportedError(std::string(kind()) + " source cannot resume"); }

Result<RegisterSet> Driver::Registers(unsigned vcpu) {
  return NotFoundError("no registers for vCPU " + std::to_string(vcpu));
}

Status Driver::SetRegister(unsigned, Register, uint64_t) {
  return UnsupportedError(std::string(kind()) + " source cannot set registers");
}

std::string_view RunStateName(RunState state) {
  switch (state) {
    case RunState::kRunning: return "running";
    case RunState::kPaused: return "paused";
    case RunState::kGone: return "gone";
  }
  return "unknown";
}

uint64_t Driver::end_address() const {
  auto r = ranges();
  return r.empty() ? 0 : r.back().end;
}

}  // namespace vmemfs::drivers
