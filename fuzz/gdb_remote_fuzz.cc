// Fuzzes what a GDB stub says back: the RSP stream GdbRemote reads (acks, framing, checksums,
// '}' escapes, '*' run lengths, stop replies, console output) and the wire helpers on their own.
//
// Input: [selector:1][bytes...]. Selector even: the bytes are everything the stub sends, then it
// stops sending (the client sees EOF and never waits out a timeout); the client handshakes, reads
// registers and memory, runs a monitor command and interrupts, as the GDB driver does. Selector
// odd: Decode and FromHex on the bytes, with their contracts checked.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "drivers/gdb_remote.h"
#include "invariant.h"

namespace vmemfs::drivers {
namespace {

using std::chrono::milliseconds;

void Stream(std::string_view bytes) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return;
  // The fuzz input is at most a few KiB: it fits the socket buffer, so this never blocks.
  ssize_t sent = bytes.empty() ? 0 : send(fds[1], bytes.data(), bytes.size(), MSG_NOSIGNAL);
  shutdown(fds[1], SHUT_WR);  // the stub stops talking; the client's writes still go through
  if (sent != static_cast<ssize_t>(bytes.size())) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  auto remote = GdbRemote::FromFd(fds[0], "fuzz", {.timeout = milliseconds(200)});
  if (remote->Handshake().ok()) {
    CHECK_INVARIANT(remote->packet_size() > 0);
    CHECK_INVARIANT(remote->features().size() <= GdbRemote::kMaxPacketBytes);
  }
  if (auto regs = remote->Command("g"); regs.has_value()) {
    CHECK_INVARIANT(regs->size() <= GdbRemote::kMaxPacketBytes);
  }
  (void)remote->Command("m1000,40");
  std::string output;
  (void)remote->CommandWithOutput("qRcmd,696e666f", &output, milliseconds(200));
  CHECK_INVARIANT(output.size() <= GdbRemote::kMaxPacketBytes);
  (void)remote->Interrupt(milliseconds(200));
  (void)remote->DrainAsync();
  remote.reset();
  close(fds[1]);
}

void Wire(std::string_view bytes) {
  constexpr size_t kLimit = 4096;
  if (auto decoded = rsp::Decode(bytes, kLimit)) CHECK_INVARIANT(decoded->size() <= kLimit);
  if (auto raw = rsp::FromHex(bytes)) {
    CHECK_INVARIANT(raw->size() * 2 == bytes.size());
    CHECK_INVARIANT(rsp::FromHex(rsp::ToHex(*raw)) == raw);
  }
  (void)rsp::IsStopReply(bytes);
}

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    Wire(bytes);
  } else {
    Stream(bytes);
  }
}

}  // namespace
}  // namespace vmemfs::drivers

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::drivers::Run(data, size);
  return 0;
}
