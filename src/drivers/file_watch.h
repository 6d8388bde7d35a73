// Mapped files that another program may truncate, shrink or rewrite while vmemfs serves them.
//
// A read through a MAP_SHARED mapping of bytes the file no longer has raises SIGBUS, which
// would kill the daemon. Every MappedFile registers its mapping here, and one process-wide
// SIGBUS handler finds the mapping that faulted, maps zero pages over the lost part (so the
// faulting copy completes), records how many bytes of the file are still intact and marks the
// file touched. Readers copy first and check afterwards (WatchedFile::Check,
// MappingsUntouched), so the zeros are never served as memory. A SIGBUS at any other address
// keeps its meaning: the previous handler runs, or the default action ends the process.
//
// A file can also shrink by less than a page, which raises no signal (the kernel zeroes the
// tail of the last page), and splice(2) from a shrunk file just ends early. Both are caught by
// knowing of a change before it happens (a lease, file_lease.h) or by checking the size
// (WatchedFile::Recheck, one fstat).
//
// The handler is async-signal-safe: it reads a fixed table of atomic pointers, calls fstat and
// mmap, and stores atomics.
#ifndef VMEMFS_DRIVERS_FILE_WATCH_H_
#define VMEMFS_DRIVERS_FILE_WATCH_H_

#include <sys/stat.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>

#include "base/status.h"

namespace vmemfs::drivers {

namespace internal {
// Registered files that have been touched (lost bytes, lost their lease).
extern std::atomic<int> g_touched_files;
}  // namespace internal

// True while no mapped file has been touched. Call it after copying from a mapping: if it is
// still true, the copy holds the file's bytes. One load; REQUIRES nothing else.
inline bool MappingsUntouched() {
  std::atomic_thread_fence(std::memory_order_acquire);  // the copy's loads come first
  return internal::g_touched_files.load(std::memory_order_relaxed) == 0;
}

// What vmemfs knows about one mapped file. Lives at a fixed address while registered.
// Thread safety: every method may be called from many threads and from the signal handler's
// thread; the atomics are the state.
class WatchedFile {
 public:
  // `base`/`size`: the mapping (size = the file's size when it was mapped); `at_open`: fstat
  // then. The file's bytes are intact until something says otherwise.
  WatchedFile(int fd, std::byte* base, uint64_t size, bool writable, const struct stat& at_open)
      : fd_(fd), base_(base), size_(size), writable_(writable), at_open_(at_open), intact_(size) {}
  WatchedFile(const WatchedFile&) = delete;
  WatchedFile& operator=(const WatchedFile&) = delete;

  int fd() const { return fd_; }
  std::byte* base() const { return base_; }
  uint64_t size() const { return size_; }
  bool writable() const { return writable_; }
  const struct stat& at_open() const { return at_open_; }

  // Bytes [0, intact()) are still the file's as mapped; later ones were lost.
  uint64_t intact() const { return intact_.load(std::memory_order_acquire); }
  // Called after copying [offset, offset + length) from the mapping: OK if those bytes are
  // intact, else kUnavailable naming the size the file shrank to.
  // The fence keeps the copy's loads before the one load of intact_ (an acquire load would
  // only keep later ones after it); on x86 it costs the compiler's freedom, no instruction.
  Status Check(uint64_t offset, uint64_t length) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t intact = intact_.load(std::memory_order_relaxed);
    if (length <= intact && offset <= intact - length) [[likely]] {
      return Status();
    }
    return LostError(offset);
  }
  // Looks at the file now (fstat): a file smaller than intact() lost the rest. Returns false
  // when the file cannot be looked at.
  bool Recheck();
  // Records that bytes from `offset` on are gone. Async-signal-safe.
  void Lose(uint64_t offset);
  // Marks the file touched (once): MappingsUntouched() is false from now on.
  void Touch();
  bool touched() const { return touched_.load(std::memory_order_acquire); }

  // --- Lease state (file_lease.h) ---
  // True while a lease promises that nobody changes the file without vmemfs hearing first.
  bool stable() const { return stable_.load(std::memory_order_seq_cst); }
  // A reader that may splice from the file, or view its mapping, announces itself first; the
  // lease is only given back once no reader that saw the file stable is left. Returns
  // stable(); EndRead must follow either way.
  bool BeginRead() {
    readers_.fetch_add(1, std::memory_order_seq_cst);
    return stable();
  }
  void EndRead() { readers_.fetch_sub(1, std::memory_order_release); }
  int readers() const { return readers_.load(std::memory_order_seq_cst); }
  void set_stable(bool stable) { stable_.store(stable, std::memory_order_seq_cst); }
  // When the lease was broken (0: never held one, or still holds it).
  time_t lease_broken_at() const { return lease_broken_at_.load(std::memory_order_acquire); }
  void set_lease_broken_at(time_t t) { lease_broken_at_.store(t, std::memory_order_release); }

 private:
  Status LostError(uint64_t offset) const;

  const int fd_;
  std::byte* const base_;
  const uint64_t size_;
  const bool writable_;
  const struct stat at_open_;
  std::atomic<uint64_t> intact_;
  std::atomic<bool> touched_{false};
  std::atomic<bool> stable_{false};
  std::atomic<int> readers_{0};
  std::atomic<time_t> lease_broken_at_{0};
};

// Registers `file` with the SIGBUS handler (installed at the first call). Errors:
// kUnsupported when kMaxWatchedFiles files are registered already, kOs if the handler cannot
// be installed.
inline constexpr size_t kMaxWatchedFiles = 4096;
Status RegisterWatchedFile(WatchedFile* file);
// REQUIRES: registered, and nobody reads its mapping any more.
void UnregisterWatchedFile(WatchedFile* file);

// Calls `fn` for every registered file, under the registry's lock (registration waits).
void ForEachWatchedFile(const std::function<void(WatchedFile&)>& fn);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_FILE_WATCH_H_
