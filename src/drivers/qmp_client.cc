#include "drivers/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

namespace vmemfs::drivers {
namespace {

using json = nlohmann::json;

std::optional<pid_t> PeerPid(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) {
    return std::nullopt;
  }
  return cred.pid;
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

// Waits for `events` on fd until the deadline: true when ready, false on timeout.
Result<bool> WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    struct pollfd p = {fd, events, 0};
    const int n = poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return OsError("poll");
  }
}

// nlohmann's typed accessors throw on a type mismatch; QEMU's JSON is untrusted, so each
// accessor of it runs inside one of these (exceptions never leave this file).
template <typename T, typename F>
T OrDefault(T fallback, F f) {
  try {
    return f();
  } catch (const json::exception&) {
    return fallback;
  }
}

std::string VersionFromGreeting(const json& greeting) {
  return OrDefault<std::string>("unknown", [&] {
    const json& ver = greeting.at("QMP").at("version");
    const json& q = ver.at("qemu");
    std::string s = std::to_string(q.at("major").get<int>()) + "." +
                    std::to_string(q.at("minor").get<int>()) + "." +
                    std::to_string(q.at("micro").get<int>());
    const std::string package = ver.value("package", "");
    if (!package.empty()) s += " (" + package.substr(0, 200) + ")";
    return s;
  });
}

// The QMP error of a reply as a Status: unknown commands are kUnsupported (an older QEMU),
// everything else the caller's mistake.
Status QmpError(std::string_view command, const json& error) {
  const std::string desc =
      OrDefault<std::string>("error", [&] { return error.at("desc").get<std::string>(); });
  const std::string cls =
      OrDefault<std::string>("", [&] { return error.at("class").get<std::string>(); });
  std::string message = "QMP " + std::string(command) + ": " + desc.substr(0, 1000);
  return cls == "CommandNotFound" ? UnsupportedError(std::move(message))
                                  : InvalidArgumentError(std::move(message));
}

}  // namespace

Result<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& path,
                                                      const QmpOptions& options) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgumentError(path + ": not a usable unix socket path");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return OsError(path + ": socket");
  // A unix connect never blocks for long: it fails at once when nobody listens, and QEMU
  // accepts in its main loop (a full backlog would be a hung QEMU, caught by the greeting wait).
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status s = OsError(path + ": cannot connect to QMP");
    close(fd);
    return s;
  }
  return Adopt(fd, path, options);
}

Result<std::unique_ptr<QmpClient>> QmpClient::Adopt(int fd, std::string name,
                                                    const QmpOptions& options) {
  std::unique_ptr<QmpClient> client(new QmpClient(fd, std::move(name), options));
  Status s = client->Handshake();
  if (!s.ok()) return s;
  return client;
}

QmpClient::QmpClient(int fd, std::string name, const QmpOptions& options)
    : fd_(fd), watch_fd_(fd), name_(std::move(name)), options_(options), peer_pid_(PeerPid(fd)) {}

QmpClient::~QmpClient() { close(watch_fd_); }

Status QmpClient::Handshake() {
  std::lock_guard lock(mu_);
  VMEMFS_ASSIGN_OR_RETURN(std::string line, ReadLine(Clock::now() + options_.timeout));
  json greeting = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!greeting.is_object() || !greeting.contains("QMP")) {
    return Fail(BadDataError(name_ + ": not a QMP greeting"));
  }
  version_ = VersionFromGreeting(greeting);
  Result<std::string> r = Execute("qmp_capabilities", "");
  return r.status();
}

Result<std::string> QmpClient::Qmp(std::string_view command, std::string_view arguments_json) {
  std::lock_guard lock(mu_);
  return Execute(command, arguments_json);
}

Result<std::string> QmpClient::Hmp(std::string_view command_line) {
  const std::string args = json{{"command-line", std::string(command_line)}}.dump();
  VMEMFS_ASSIGN_OR_RETURN(std::string ret, Qmp("human-monitor-command", args));
  json text = json::parse(ret, nullptr, false);
  if (!text.is_string()) return BadDataError(name_ + ": HMP output is not a string");
  return text.get<std::string>();
}

Result<std::string> QmpClient::Execute(std::string_view command, std::string_view arguments_json) {
  if (!connected()) return Closed();
  json request = {{"execute", std::string(command)}, {"id", next_id_++}};
  if (!arguments_json.empty()) {
    json args = json::parse(arguments_json, nullptr, false);
    if (!args.is_object()) return InvalidArgumentError("QMP arguments must be a JSON object");
    request["arguments"] = std::move(args);
  }
  const uint64_t id = request["id"];
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  VMEMFS_TRY(SendAll(request.dump() + "\n", deadline));
  while (true) {
    VMEMFS_ASSIGN_OR_RETURN(std::string line, ReadLine(deadline));
    json reply = json::parse(line, nullptr, false);
    if (!reply.is_object()) return Fail(BadDataError(name_ + ": QMP sent a non-object"));
    // Events, and replies to commands that timed out before, are not ours.
    if (!reply.contains("id") || reply["id"] != id) continue;
    if (reply.contains("error")) return QmpError(command, reply["error"]);
    if (!reply.contains("return")) return Fail(BadDataError(name_ + ": QMP reply without return"));
    return reply["return"].dump();
  }
}

Status QmpClient::SendAll(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd_.load(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Fail(UnavailableError(name_ + ": QMP connection lost: " + strerror(errno)));
    }
    VMEMFS_ASSIGN_OR_RETURN(bool ready, WaitFor(fd_.load(), POLLOUT, deadline));
    if (!ready) return UnavailableError(name_ + ": QMP does not accept commands (timeout)");
  }
  return Status();
}

Result<std::string> QmpClient::ReadLine(Clock::time_point deadline) {
  size_t scanned = 0;
  while (true) {
    const size_t eol = buffer_.find('\n', scanned);
    if (eol != std::string::npos) {
      std::string line = buffer_.substr(0, eol);
      buffer_.erase(0, eol + 1);
      return line;
    }
    scanned = buffer_.size();
    if (buffer_.size() > options_.max_message) {
      return Fail(BadDataError(name_ + ": QMP message longer than " +
                               std::to_string(options_.max_message) + " bytes"));
    }
    VMEMFS_ASSIGN_OR_RETURN(bool ready, WaitFor(fd_.load(), POLLIN, deadline));
    if (!ready) {
      return UnavailableError(name_ + ": QMP did not answer within " +
                              std::to_string(options_.timeout.count()) + " ms");
    }
    char chunk[65536];
    const ssize_t n = recv(fd_.load(), chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      return Fail(UnavailableError(name_ + ": QMP connection closed by QEMU"));
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Fail(UnavailableError(name_ + ": QMP connection lost: " + strerror(errno)));
    }
  }
}

Status QmpClient::Fail(Status status) {
  // shutdown, not close: the fd number stays ours (no reuse under a poller), and pollers of
  // fd_for_hangup() see POLLHUP.
  const int fd = fd_.exchange(-1);
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
  buffer_.clear();
  return status;
}

Status QmpClient::Closed() const { return UnavailableError(name_ + ": QMP connection is closed"); }

}  // namespace vmemfs::drivers
