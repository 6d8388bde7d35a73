#include "drivers/file_lease.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>

namespace vmemfs::drivers {
namespace {

// How long a breaking lease waits for the readers that saw the file stable. Reads are planned
// and sent in microseconds; this bounds a reader stuck for another reason.
constexpr auto kMaxReaderWait = std::chrono::seconds(10);

int g_wake = -1;                     // eventfd: the SIGIO handler -> the watcher
struct sigaction g_previous_sigio;  // written once, before the handler can run

int LeaseType(const WatchedFile& file) { return file.writable() ? F_WRLCK : F_RDLCK; }

// SIGIO: some lease (or other I/O owner) wants attention. Async-signal-safe: one write.
void OnSigio(int sig, siginfo_t* info, void* context) {
  const int saved = errno;
  const uint64_t one = 1;
  ssize_t ignored = write(g_wake, &one, sizeof one);
  (void)ignored;
  errno = saved;
  const struct sigaction& prev = g_previous_sigio;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
  } else if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL &&
             prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
  }
  // SIG_DFL would have ended the process: SIGIO is ours to take from here on.
}

// The lease on `file` is being broken: no new reader may take the file as stable, the ones
// that did finish, then the lease goes back and the other process may go on.
void GiveBack(WatchedFile& file) {
  file.set_stable(false);
  file.set_lease_broken_at(time(nullptr));
  file.Touch();
  const auto deadline = std::chrono::steady_clock::now() + kMaxReaderWait;
  while (file.readers() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  fcntl(file.fd(), F_SETLEASE, F_UNLCK);
}

[[noreturn]] void Watch() {
  for (;;) {
    uint64_t count;
    if (read(g_wake, &count, sizeof count) < 0 && errno != EINTR) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // SIGIOs merge, so every leased file is asked whether its lease is being broken.
    ForEachWatchedFile([](WatchedFile& file) {
      if (file.stable() && fcntl(file.fd(), F_GETLEASE) != LeaseType(file)) GiveBack(file);
    });
  }
}

Status StartWatcherOnce() {
  static Status started = []() -> Status {
    g_wake = eventfd(0, EFD_CLOEXEC);
    if (g_wake < 0) return OsError("cannot create the lease watcher's eventfd");
    struct sigaction sa = {};
    sa.sa_sigaction = OnSigio;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGIO, &sa, &g_previous_sigio) != 0) {
      return OsError("cannot install the SIGIO handler for leases");
    }
    try {
      std::thread(Watch).detach();
    } catch (const std::system_error& e) {
      return UnsupportedError(std::string("cannot start the lease watcher: ") + e.what());
    }
    return Status();
  }();
  return started;
}

}  // namespace

Status TakeLease(WatchedFile& file) {
  VMEMFS_TRY(StartWatcherOnce());
  // Stable first: a break that comes at once must find the file to give back.
  file.set_stable(true);
  if (fcntl(file.fd(), F_SETLEASE, LeaseType(file)) != 0) {
    Status refused = OsError(file.writable() ? "no write lease" : "no read lease");
    file.set_stable(false);
    return refused;
  }
  return Status();
}

void ReleaseLease(WatchedFile& file) {
  // Under the registry's lock: the watcher is not giving it back at the same time.
  ForEachWatchedFile([&file](WatchedFile& f) {
    if (&f != &file || !f.stable()) return;
    f.set_stable(false);
    fcntl(f.fd(), F_SETLEASE, F_UNLCK);
  });
}

}  // namespace vmemfs::drivers
