// A scripted GDB stub on one end of a socketpair, for tests of the RSP client and driver.
// Its thread reads what the client sends, acks well-formed packets with '+' (until the client
// asks for no-ack mode), and hands each packet payload (or "\x03" for an interrupt) to a
// handler that returns the raw bytes to send back: framed replies, garbage, nothing.
#ifndef VMEMFS_TESTS_DRIVERS_GDB_FAKE_STUB_H_
#define VMEMFS_TESTS_DRIVERS_GDB_FAKE_STUB_H_

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drivers/gdb_remote.h"

namespace vmemfs::testing {

class FakeStub {
 public:
  using Handler = std::function<std::string(const std::string& packet)>;

  explicit FakeStub(Handler handler) : handler_(std::move(handler)) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    client_fd_ = fds[0];
    stub_fd_ = fds[1];
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeStub() {
    CloseStub();
    thread_.join();
    close(stub_fd_);
  }

  // The client's end; the caller owns it (GdbRemote::FromFd).
  int TakeClientFd() { return client_fd_; }

  // Sends raw bytes unprompted (an asynchronous stop reply, garbage).
  void Push(const std::string& bytes) {
    if (!closed_) (void)!send(stub_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  // Simulates the stub going away.
  void CloseStub() {
    if (!closed_.exchange(true)) shutdown(stub_fd_, SHUT_RDWR);
  }

  // Everything the client sent, in order ('+', '-', packets, 0x03).
  std::string received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  std::vector<std::string> packets() {
    std::lock_guard lock(mu_);
    return packets_;
  }

 private:
  void Run() {
    std::string buf;
    char chunk[65536];
    for (;;) {
      const ssize_t n = read(stub_fd_, chunk, sizeof(chunk));
      if (n <= 0) break;
      {
        std::lock_guard lock(mu_);
        received_.append(chunk, static_cast<size_t>(n));
      }
      buf.append(chunk, static_cast<size_t>(n));
      Parse(&buf);
    }
  }

  void Parse(std::string* buf) {
    for (;;) {
      if (buf->empty()) return;
      const char c = (*buf)[0];
      if (c == '\x03') {
        buf->erase(0, 1);
        Reply(handler_("\x03"));
        continue;
      }
      if (c != '$') {
        buf->erase(0, 1);
        continue;
      }
      const size_t hash = buf->find('#');
      if (hash == std::string::npos || buf->size() < hash + 3) return;
      const std::string payload = buf->substr(1, hash - 1);
      buf->erase(0, hash + 3);
      {
        std::lock_guard lock(mu_);
        packets_.push_back(payload);
      }
      // The handler runs before the ack goes out, so a test sees its effect (e.g. "running")
      // as soon as the client returns.
      std::string reply = handler_(payload);
      if (!no_ack_) Push("+");
      if (payload == "QStartNoAckMode" && reply == drivers::rsp::Frame("OK")) no_ack_ = true;
      Reply(reply);
    }
  }

  void Reply(const std::string& bytes) {
    if (!bytes.empty()) Push(bytes);
  }

  Handler handler_;
  int client_fd_ = -1;
  int stub_fd_ = -1;
  std::atomic<bool> closed_{false};
  bool no_ack_ = false;
  std::thread thread_;
  std::mutex mu_;
  std::string received_;
  std::vector<std::string> packets_;
};

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_DRIVERS_GDB_FAKE_STUB_H_
