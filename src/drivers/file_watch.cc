#include "drivers/file_watch.h"

#include <signal.h>
#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <mutex>

namespace vmemfs::drivers {

namespace internal {
std::atomic<int> g_touched_files{0};
}  // namespace internal

namespace {

constexpr uint64_t kPage = 4096;

uint64_t PageCeil(uint64_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// The registry: read without locks by the SIGBUS handler, changed under g_registry_mu.
std::atomic<WatchedFile*> g_files[kMaxWatchedFiles];
std::mutex g_registry_mu;
struct sigaction g_previous_sigbus;  // written once, before the handler can run

// What SIGBUS meant before us: the previous handler, or the default action (which ends the
// process, with the signal it would have ended with without us).
void PassOn(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = g_previous_sigbus;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  raise(sig);  // delivered as we return; a fault would also repeat and end it
}

// The file lost bytes at `offset` of its mapping: maps zeros over what is gone so the faulting
// copy can finish, and records the loss. False if the zeros cannot be mapped.
bool ZeroLostPages(WatchedFile& file, uint64_t offset) {
  const uint64_t page = offset & ~(kPage - 1);
  struct stat st;
  const uint64_t now = fstat(file.fd(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // Shrunk: everything from the page after the new end. Otherwise (grown back, an I/O error):
  // the one page that failed.
  const uint64_t from = now <= page ? PageCeil(now) : page;
  const uint64_t to = now <= page ? PageCeil(file.size()) : page + kPage;
  file.Lose(now <= page ? now : page);
  file.Touch();
  const int prot = PROT_READ | (file.writable() ? PROT_WRITE : 0);
  void* zeros = mmap(file.base() + from, to - from, prot,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return zeros != MAP_FAILED;
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (info->si_code == BUS_ADRERR) {
    for (auto& slot : g_files) {
      WatchedFile* file = slot.load(std::memory_order_acquire);
      if (file == nullptr) continue;
      const auto base = reinterpret_cast<uintptr_t>(file->base());
      if (addr < base || addr - base >= PageCeil(file->size())) continue;
      if (ZeroLostPages(*file, addr - base)) return;
      break;
    }
  }
  PassOn(sig, info, context);
}

Status InstallHandlerOnce() {
  static Status installed = [] {
    struct sigaction sa = {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &g_previous_sigbus) != 0) {
      return OsError("cannot install the SIGBUS handler for mapped files");
    }
    return Status();
  }();
  return installed;
}

}  // namespace

bool WatchedFile::Recheck() {
  struct stat st;
  if (fstat(fd_, &st) != 0) return false;
  if (static_cast<uint64_t>(st.st_size) < intact()) {
    Lose(static_cast<uint64_t>(st.st_size));
    Touch();
  }
  return true;
}

void WatchedFile::Lose(uint64_t offset) {
  uint64_t now = intact_.load(std::memory_order_relaxed);
  while (offset < now &&
         !intact_.compare_exchange_weak(now, offset, std::memory_order_acq_rel)) {
  }
}

void WatchedFile::Touch() {
  bool expected = false;
  if (touched_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    internal::g_touched_files.fetch_add(1, std::memory_order_seq_cst);
  }
}

Status WatchedFile::LostError(uint64_t offset) const {
  char text[160];
  snprintf(text, sizeof text,
           "file offset 0x%" PRIx64 " is gone: the file lost its bytes from 0x%" PRIx64
           " on while mounted (truncated by another program?)",
           offset, intact());
  return UnavailableError(text);
}

Status RegisterWatchedFile(WatchedFile* file) {
  std::lock_guard lock(g_registry_mu);
  VMEMFS_TRY(InstallHandlerOnce());
  for (auto& slot : g_files) {
    if (slot.load(std::memory_order_relaxed) == nullptr) {
      slot.store(file, std::memory_order_release);
      return Status();
    }
  }
  return UnsupportedError("more than " + std::to_string(kMaxWatchedFiles) + " mapped files");
}

void UnregisterWatchedFile(WatchedFile* file) {
  std::lock_guard lock(g_registry_mu);
  for (auto& slot : g_files) {
    if (slot.load(std::memory_order_relaxed) == file) slot.store(nullptr, std::memory_order_release);
  }
  if (file->touched()) internal::g_touched_files.fetch_sub(1, std::memory_order_seq_cst);
}

void ForEachWatchedFile(const std::function<void(WatchedFile&)>& fn) {
  std::lock_guard lock(g_registry_mu);
  for (auto& slot : g_files) {
    if (WatchedFile* file = slot.load(std::memory_order_relaxed)) fn(*file);
  }
}

}  // namespace vmemfs::drivers
