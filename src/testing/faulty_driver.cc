#include "testing/faulty_driver.h"

#include <algorithm>
#include <utility>

namespace vmemfs::testing {

using drivers::PhysRange;

FaultyDriver::FaultyDriver(std::unique_ptr<drivers::Driver> inner) : inner_(std::move(inner)) {}

void FaultyDriver::FailReads(PhysRange range, Status error) {
  std::lock_guard lock(mu_);
  failing_.push_back({range, std::move(error)});
}

void FaultyDriver::FailReadsAfter(uint64_t n, Status error) {
  std::lock_guard lock(mu_);
  reads_left_ = n;
  after_reads_error_ = std::move(error);
}

void FaultyDriver::MakeGone() { gone_ = true; }

Status FaultyDriver::GoneError() const {
  return UnavailableError(std::string(inner_->kind()) + " source is gone (injected)");
}

Status FaultyDriver::ReadFault(uint64_t pa, uint64_t len) {
  std::lock_guard lock(mu_);
  if (reads_left_) {
    if (*reads_left_ == 0) return after_reads_error_;
    --*reads_left_;
  }
  const uint64_t last = pa + (len == 0 ? 0 : len - 1);  // inclusive: a read may end at 2^64
  for (const FailingRange& f : failing_) {
    if (len == 0 || last < f.range.start || pa >= f.range.end) continue;
    const uint64_t first = std::max(pa, f.range.start);
    if (f.error.code() == ErrorCode::kFault) return FaultError(first, f.error.message());
    return f.error;
  }
  return Status();
}

Status FaultyDriver::ReadPhys(uint64_t pa, std::span<std::byte> out) {
  Count(Call::kReadPhys);
  if (gone_) return GoneError();
  VMEMFS_TRY(ReadFault(pa, out.size()));
  return inner_->ReadPhys(pa, out);
}

Status FaultyDriver::WritePhys(uint64_t pa, std::span<const std::byte> in) {
  Count(Call::kWritePhys);
  if (gone_) return GoneError();
  return inner_->WritePhys(pa, in);
}

uint64_t FaultyDriver::ZeroCopyLimit(uint64_t pa) const {
  if (gone_) return 0;
  std::lock_guard lock(mu_);
  if (reads_left_) return 0;
  uint64_t limit = UINT64_MAX;
  for (const FailingRange& f : failing_) {
    if (pa >= f.range.end) continue;
    if (pa >= f.range.start) return 0;
    limit = std::min(limit, f.range.start - pa);
  }
  return limit;
}

std::span<const std::byte> FaultyDriver::Mapped(uint64_t pa) const {
  Count(Call::kMapped);
  const uint64_t limit = ZeroCopyLimit(pa);
  if (limit == 0) return {};
  std::span<const std::byte> bytes = inner_->Mapped(pa);
  return bytes.first(static_cast<size_t>(std::min<uint64_t>(bytes.size(), limit)));
}

std::optional<drivers::FileExtent> FaultyDriver::FileBacked(uint64_t pa) const {
  Count(Call::kFileBacked);
  const uint64_t limit = ZeroCopyLimit(pa);
  if (limit == 0) return std::nullopt;
  std::optional<drivers::FileExtent> extent = inner_->FileBacked(pa);
  if (extent) extent->length = std::min(extent->length, limit);
  return extent;
}

Status FaultyDriver::Pause() {
  Count(Call::kPause);
  if (gone_) return GoneError();
  return inner_->Pause();
}

Status FaultyDriver::Resume() {
  Count(Call::kResume);
  if (gone_) return GoneError();
  return inner_->Resume();
}

std::optional<drivers::RunState> FaultyDriver::State() {
  Count(Call::kState);
  if (gone_) return drivers::RunState::kGone;
  return inner_->State();
}

Result<drivers::RegisterSet> FaultyDriver::Registers(unsigned vcpu) {
  Count(Call::kRegisters);
  if (gone_) return GoneError();
  return inner_->Registers(vcpu);
}

Status FaultyDriver::SetRegister(unsigned vcpu, drivers::Register reg, uint64_t value) {
  Count(Call::kSetRegister);
  if (gone_) return GoneError();
  return inner_->SetRegister(vcpu, reg, value);
}

}  // namespace vmemfs::testing
