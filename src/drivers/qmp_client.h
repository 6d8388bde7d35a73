// A QEMU monitor reached through QMP on a unix socket (`-qmp unix:PATH,server=on`).
//
// Protocol: QEMU greets with {"QMP": ...}; we answer qmp_capabilities; then each command is
// sent with a numeric "id" and the reply carrying that id is its answer. Asynchronous events
// ({"event": ...}) and stale replies (of commands that timed out earlier) are skipped.
//
// Hostile peer: every wait is bounded by the timeout (poll), every message by max_message
// bytes, and garbage never crashes: it fails the command with kBadData and closes the
// connection, because a stream that lost its framing cannot be trusted again. Once closed
// (EOF, error, garbage) every call fails with kUnavailable at once.
//
// Thread safety: commands are serialised by a mutex; call from any thread.
#ifndef VMEMFS_DRIVERS_QMP_CLIENT_H_
#define VMEMFS_DRIVERS_QMP_CLIENT_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "drivers/qemu_monitor.h"

namespace vmemfs::drivers {

struct QmpOptions {
  // Longest wait for one command's reply (or the greeting). QEMU answers in microseconds
  // unless it is hung; `info mtree` on a big VM takes milliseconds.
  std::chrono::milliseconds timeout{5000};
  // Longest message accepted (HMP output of `info mtree -f` is a few KiB; `info registers -a`
  // about 2 KiB per vCPU).
  size_t max_message = 16 << 20;
};

class QmpClient final : public QemuMonitor {
 public:
  // Connects to the QMP socket at `path` and negotiates capabilities. Errors: kOs (connect),
  // kUnavailable (EOF, timeout), kBadData (not a QMP greeting), each naming `path`.
  static Result<std::unique_ptr<QmpClient>> Connect(const std::string& path,
                                                    const QmpOptions& options = {});
  // The same over an already connected stream socket, which the client then owns (tests use
  // a socketpair). `name` appears in error messages.
  static Result<std::unique_ptr<QmpClient>> Adopt(int fd, std::string name,
                                                  const QmpOptions& options = {});

  ~QmpClient() override;

  Result<std::string> Qmp(std::string_view command, std::string_view arguments_json) override;
  Result<std::string> Hmp(std::string_view command_line) override;

  // "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" from the greeting.
  const std::string& version() const { return version_; }
  const std::string& name() const { return name_; }
  // The pid of the process that listens on the socket (SO_PEERCRED), if the kernel says.
  std::optional<pid_t> peer_pid() const { return peer_pid_; }
  // False once the connection is closed; never becomes true again.
  bool connected() const { return fd_.load() >= 0; }
  // The socket, for poll(events = 0) to notice a hang-up (POLLHUP) without reading. Only
  // valid while connected(); never read from or write to it.
  int fd_for_hangup() const { return watch_fd_; }

 private:
  QmpClient(int fd, std::string name, const QmpOptions& options);
  using Clock = std::chrono::steady_clock;

  Status Handshake();
  Result<std::string> Execute(std::string_view command, std::string_view arguments_json);
  Status SendAll(std::string_view data, Clock::time_point deadline);
  // The next complete line of the stream (one QMP message), without its line end.
  Result<std::string> ReadLine(Clock::time_point deadline);
  Status Fail(Status status);  // closes the connection, returns `status`
  Status Closed() const;

  std::mutex mu_;
  std::atomic<int> fd_;
  const int watch_fd_;  // fd_ as opened; closed in the destructor only
  const std::string name_;
  const QmpOptions options_;
  std::string version_;
  std::optional<pid_t> peer_pid_;
  std::string buffer_;    // received bytes not yet consumed; guarded by mu_
  uint64_t next_id_ = 1;  // guarded by mu_
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_QMP_CLIENT_H_
