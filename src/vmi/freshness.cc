#include "vmi/freshness.h"

#include <algorithm>

namespace vmemfs::vmi {

uint64_t Freshness::Generation(bool running) {
  if (live_ && running) {
    // The age tick: one generation per kLiveAge of wall time in which anyone asked.
    const int64_t tick = Clock::now().time_since_epoch() / kLiveAge;
    int64_t seen = age_tick_.load(std::memory_order_relaxed);
    if (tick != seen && age_tick_.compare_exchange_strong(seen, tick)) Bump();
  }
  return generation_.load(std::memory_order_acquire);
}

bool Freshness::KernelCheckDue(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!checked_once_ || forced_) return true;
  return live_ && now >= next_check_;
}

void Freshness::KernelChecked(bool found, Clock::time_point now) {
  std::lock_guard lock(mu_);
  checked_once_ = true;
  forced_ = false;
  if (found) {
    retry_ = kFirstRetry;  // a kernel that goes away is looked for again quickly
    next_check_ = now + kKernelCheck;
  } else {
    next_check_ = now + retry_;
    retry_ = std::min(retry_ * 2, kMaxRetry);
  }
}

void Freshness::ForceKernelCheck() {
  std::lock_guard lock(mu_);
  forced_ = true;
  retry_ = kFirstRetry;
  incomplete_looked_ = false;
}

Freshness::Clock::duration Freshness::RetryIn(Clock::time_point now) {
  std::lock_guard lock(mu_);
  return std::max(next_check_ - now, Clock::duration::zero());
}

bool Freshness::IncompleteRecheckDue(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!live_) return false;  // a snapshot's kernel is what it is
  if (incomplete_looked_ && now - last_incomplete_look_ < kIncompleteRecheck) return false;
  incomplete_looked_ = true;
  last_incomplete_look_ = now;
  return true;
}

bool Freshness::MayScanAllRam(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!live_) return true;  // a snapshot is searched once
  if (scanned_all_ && now - last_full_scan_ < kFullScanEvery) return false;
  scanned_all_ = true;
  last_full_scan_ = now;
  return true;
}

}  // namespace vmemfs::vmi
