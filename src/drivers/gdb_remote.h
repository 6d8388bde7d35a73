// A client for the GDB remote serial protocol (RSP) over a stream socket: framing
// ("$payload#cs"), checksums, '+'/'-' acknowledgements (or no-ack mode when the stub offers
// QStartNoAckMode), '}' escaping, '*' run-length decoding, the interrupt byte and stop replies.
//
// Everything the stub sends is untrusted: packets are bounded (kMaxPacketBytes), checksums are
// verified, every wait has a deadline (poll()), and a stub that does not answer in time, closes
// the connection or sends unparsable framing is treated as gone: the socket is closed and every
// later call fails with kUnavailable at once. A hung stub therefore costs one timeout, not a
// hung caller.
//
// Thread safety: none by itself. Callers hold mutex() around every call and around sequences
// that must not interleave (interrupt, read, continue).
#ifndef VMEMFS_DRIVERS_GDB_REMOTE_H_
#define VMEMFS_DRIVERS_GDB_REMOTE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs::drivers {

// RSP wire helpers, exposed for tests.
namespace rsp {
// Sum of the bytes modulo 256, the packet checksum.
uint8_t Checksum(std::string_view bytes);
// "$" + escaped payload + "#" + two hex digits.
std::string Frame(std::string_view payload);
// Undoes '}' escapes and '*' run-length encoding; nullopt if malformed or longer than `limit`.
std::optional<std::string> Decode(std::string_view raw, size_t limit);
// True for stop replies: S/T + 2 hex digits, W/X + 2 hex digits (the target exited).
bool IsStopReply(std::string_view payload);
// Lower-case hex of bytes, and back (nullopt on an odd length or a non-hex digit).
std::string ToHex(std::string_view bytes);
std::optional<std::string> FromHex(std::string_view hex);
}  // namespace rsp

class GdbRemote {
 public:
  // Longest packet accepted from the stub (decoded): 1 MiB, far above any real PacketSize.
  static constexpr size_t kMaxPacketBytes = 1 << 20;

  struct Options {
    std::chrono::milliseconds timeout{3000};  // for each reply
  };

  // `endpoint`: "HOST:PORT" (TCP) or "unix:/path". Errors: kInvalidArgument (syntax), kOs.
  static Result<std::unique_ptr<GdbRemote>> Connect(std::string_view endpoint, Options options);
  // Takes ownership of a connected stream socket (tests use a socketpair).
  static std::unique_ptr<GdbRemote> FromFd(int fd, std::string name, Options options);
  ~GdbRemote();
  GdbRemote(const GdbRemote&) = delete;
  GdbRemote& operator=(const GdbRemote&) = delete;

  std::mutex& mutex() { return mu_; }
  const std::string& name() const { return name_; }

  // qSupported, then QStartNoAckMode if offered. Fills features() and packet_size().
  Status Handshake();
  // The stub's qSupported reply, and its PacketSize (default 400 bytes if not stated).
  const std::string& features() const { return features_; }
  size_t packet_size() const { return packet_size_; }
  bool no_ack() const { return no_ack_; }
  bool gone() const { return fd_ < 0; }

  // Sends `packet` and returns the reply. Stop replies that arrive meanwhile (the VM stopped
  // by someone else) are counted in async_stops() and skipped, unless `want_stop`, in which
  // case the first stop reply is the answer. An empty reply means "not supported".
  Result<std::string> Command(std::string_view packet, bool want_stop = false);
  // Like Command, with a deadline of `timeout` and console output: "O<hex>" packets are
  // decoded into `*output` until the final reply (qRcmd). Output is bounded by kMaxPacketBytes.
  Result<std::string> CommandWithOutput(std::string_view packet, std::string* output,
                                        std::chrono::milliseconds timeout);
  // Sends a packet that has no reply (continue); waits only for its ack.
  Status Send(std::string_view packet);
  // Sends the interrupt byte 0x03 and waits up to `timeout` for a stop reply. Returns false if
  // none came in time (the connection stays usable); errors only if the connection failed.
  Result<bool> Interrupt(std::chrono::milliseconds timeout);
  // Reads packets that are already waiting, without blocking; returns true if one of them
  // was a stop reply.
  Result<bool> DrainAsync();
  // Stop replies seen while a Command waited for something else.
  uint64_t async_stops() const { return async_stops_; }
  // Closes the socket; later calls fail with kUnavailable.
  void Close();

 private:
  using Clock = std::chrono::steady_clock;
  GdbRemote(int fd, std::string name, Options options);

  Status Gone(std::string_view why);
  Status WriteAll(std::string_view bytes);
  // Fills the receive buffer; a zero deadline reads only what is there. False on timeout.
  Result<bool> Fill(Clock::time_point deadline);
  Result<bool> PeekByte(Clock::time_point deadline, char* c);
  Result<bool> NextByte(Clock::time_point deadline, char* c);
  // One decoded packet, acked. nullopt on timeout (then the stream is out of sync: callers close).
  Result<std::optional<std::string>> ReadPacket(Clock::time_point deadline);
  Result<std::string> ReadReply(Clock::time_point deadline, bool want_stop, std::string* output);
  Status SendPacket(std::string_view packet, Clock::time_point deadline);

  std::mutex mu_;
  int fd_;
  const std::string name_;
  const Options options_;
  std::string rx_;     // received, not yet parsed
  size_t rx_pos_ = 0;  // first unparsed byte of rx_
  std::string features_;
  size_t packet_size_ = 0x400;
  bool no_ack_ = false;
  uint64_t async_stops_ = 0;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_GDB_REMOTE_H_
