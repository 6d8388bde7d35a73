// The freshness rule: how long anything derived from a guest's state may be used. Every cache
// of derived facts in vmemfs (the task list, directory entries, generated text, the kernel
// itself) follows this one rule instead of keeping its own clock.
//
// A snapshot cannot change: its generation moves only on an explicit flush, its kernel is
// looked for once, and everything derived is kept for the life of the mount.
//
// A live VM changes under us:
//  - The generation moves on resume, flush, a kernel change, and every kLiveAge while the VM
//    may run. Whatever is derived from guest state (process and module lists, directory
//    entries) is kept within one generation only; generated text is remade at every open.
//  - Translations are cached only while the VM is paused by vmemfs (Guest::caching).
//  - A found kernel is checked again (StillRunning) when its last check is older than
//    kKernelCheck, so a reboot or another kernel is noticed within that time of any access.
//  - While no kernel is found the search is retried after a backoff from kFirstRetry doubling
//    up to kMaxRetry; a search that has to scan all of RAM runs at most every kFullScanEvery.
//  - A found kernel with parts missing (Os::MissingParts: found while it booted) is looked for
//    again at most every kIncompleteRecheck (a look costs about 0.1 s for such a kernel: 1% at
//    most, and only while the mount is used), and replaced only by a look that misses fewer.
//
// Thread safety: every method may be called concurrently.
#ifndef VMEMFS_VMI_FRESHNESS_H_
#define VMEMFS_VMI_FRESHNESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace vmemfs::vmi {

class Freshness {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kLiveAge = std::chrono::seconds(1);
  static constexpr Clock::duration kKernelCheck = std::chrono::seconds(1);
  static constexpr Clock::duration kFirstRetry = std::chrono::milliseconds(250);
  static constexpr Clock::duration kMaxRetry = std::chrono::seconds(1);
  static constexpr Clock::duration kFullScanEvery = std::chrono::seconds(60);
  static constexpr Clock::duration kIncompleteRecheck = std::chrono::seconds(10);

  explicit Freshness(bool live) : live_(live) {}

  // The current generation. `running`: the VM may change memory now (live and not paused by
  // vmemfs), so the generation also moves with age.
  uint64_t Generation(bool running);
  // Something derived may have changed: resume, flush, a new kernel.
  void Bump() { generation_.fetch_add(1, std::memory_order_acq_rel); }

  // --- The kernel search and check schedule ---
  // True when Kernel() should check (or look for) the kernel now.
  bool KernelCheckDue(Clock::time_point now);
  // Records a check: `found` says whether a kernel is known after it. Schedules the next one.
  void KernelChecked(bool found, Clock::time_point now);
  // The next check happens at the next access (ctl flush).
  void ForceKernelCheck();
  // How long until the next search while no kernel is found (for `info`).
  Clock::duration RetryIn(Clock::time_point now);
  // Whether a found kernel with parts missing should be looked for again now (live VMs only);
  // records the look when it says yes. ForceKernelCheck makes the next one due too.
  bool IncompleteRecheckDue(Clock::time_point now);
  // Whether a search may scan all of RAM now (live VMs: at most every kFullScanEvery); records
  // the scan when it says yes.
  bool MayScanAllRam(Clock::time_point now);

 private:
  const bool live_;
  std::atomic<uint64_t> generation_{1};
  std::atomic<int64_t> age_tick_{-1};  // the kLiveAge tick last seen while running

  std::mutex mu_;
  bool checked_once_ = false;   // GUARDED_BY(mu_)
  bool forced_ = false;         // GUARDED_BY(mu_)
  Clock::time_point next_check_;  // GUARDED_BY(mu_)
  Clock::duration retry_ = kFirstRetry;  // GUARDED_BY(mu_): next backoff while none is found
  bool scanned_all_ = false;             // GUARDED_BY(mu_)
  Clock::time_point last_full_scan_;     // GUARDED_BY(mu_)
  bool incomplete_looked_ = false;       // GUARDED_BY(mu_)
  Clock::time_point last_incomplete_look_;  // GUARDED_BY(mu_)
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_FRESHNESS_H_
