// Fuzzes what a QEMU monitor says back: the QMP stream itself (greeting, capabilities, replies
// with ids, events, garbage) read by QmpClient over a socket, and the parsers of the answers the
// live drivers use (query-status, query-cpus-fast, query-kvm, `info registers -a`).
//
// Input: [selector:1][bytes...]. Selector 0-3: the bytes are the whole stream QEMU sends, then
// it stops sending (the client sees EOF, never waits out a timeout); the client connects and runs
// a QMP and an HMP command. Other selectors: one parser on the bytes as text.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "drivers/qemu_layout.h"
#include "drivers/qmp_client.h"
#include "invariant.h"

namespace vmemfs::drivers {
namespace {

void Stream(std::string_view bytes) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  // The fuzz input is at most a few KiB: it fits the socket buffer, so this never blocks.
  ssize_t sent = bytes.empty() ? 0 : send(fds[1], bytes.data(), bytes.size(), MSG_NOSIGNAL);
  shutdown(fds[1], SHUT_WR);  // QEMU stops talking; the client's own writes still go through
  if (sent == static_cast<ssize_t>(bytes.size())) {
    QmpOptions options{.timeout = std::chrono::milliseconds(200), .max_message = 4096};
    auto client = QmpClient::Adopt(fds[0], "fuzz", options);
    if (client.has_value()) {
      if (auto reply = (*client)->Qmp("query-status", ""); reply.has_value()) {
        CHECK_INVARIANT(reply->size() <= options.max_message);
      }
      (void)(*client)->Hmp("info mtree -f");
      (void)(*client)->Qmp("query-kvm", "");
    }
  } else {
    close(fds[0]);
  }
  close(fds[1]);
}

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 8) {
    case 0: case 1: case 2: case 3: Stream(text); break;
    case 4: (void)ParseQueryStatus(text); break;
    case 5:
      if (auto threads = ParseCpuThreads(text); threads.has_value()) {
        CHECK_INVARIANT(threads->size() <= 4096);
      }
      break;
    case 6: (void)ParseAccel(text); break;
    case 7:
      if (auto sets = ParseInfoRegistersAll(text); sets.has_value()) CHECK_INVARIANT(sets->size() <= 4096);
      break;
  }
}

}  // namespace
}  // namespace vmemfs::drivers

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::drivers::Run(data, size);
  return 0;
}
