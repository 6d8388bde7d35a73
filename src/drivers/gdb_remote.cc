#include "drivers/gdb_remote.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace vmemfs::drivers {
namespace rsp {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool NeedsEscape(char c) { return c == '$' || c == '#' || c == '}' || c == '*'; }

}  // namespace

uint8_t Checksum(std::string_view bytes) {
  uint8_t sum = 0;
  for (char c : bytes) sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
  return sum;
}

std::string Frame(std::string_view payload) {
  std::string body;
  body.reserve(payload.size() + 8);
  for (char c : payload) {
    if (NeedsEscape(c)) {
      body.push_back('}');
      body.push_back(static_cast<char>(c ^ 0x20));
    } else {
      body.push_back(c);
    }
  }
  const uint8_t sum = Checksum(body);
  return "$" + body + "#" + kHexDigits[sum >> 4] + kHexDigits[sum & 0xf];
}

std::optional<std::string> Decode(std::string_view raw, size_t limit) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '}') {
      if (++i == raw.size()) return std::nullopt;
      c = static_cast<char>(raw[i] ^ 0x20);
    } else if (c == '*') {
      // Run length: the previous character repeats (count char - 29) more times.
      if (out.empty() || ++i == raw.size()) return std::nullopt;
      const int repeat = static_cast<uint8_t>(raw[i]) - 29;
      if (repeat < 3 || repeat > 97) return std::nullopt;
      if (out.size() + repeat > limit) return std::nullopt;
      out.append(static_cast<size_t>(repeat), out.back());
      continue;
    }
    if (out.size() >= limit) return std::nullopt;
    out.push_back(c);
  }
  return out;
}

bool IsStopReply(std::string_view p) {
  if (p.size() < 3) return false;
  if (p[0] != 'S' && p[0] != 'T' && p[0] != 'W' && p[0] != 'X') return false;
  return HexValue(p[1]) >= 0 && HexValue(p[2]) >= 0;
}

std::string ToHex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

}  // namespace rsp

namespace {

// Ack retries for one packet: a stub that keeps NAKing is broken, not unlucky.
constexpr int kMaxSendAttempts = 3;

Result<int> ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("bad unix socket path '" + path + "'");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return OsError("socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = OsError("connect " + path);
    close(fd);
    return s;
  }
  return fd;
}

Result<int> ConnectTcp(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    return InvalidArgumentError("cannot resolve " + host + ":" + port + ": " + gai_strerror(rc));
  }
  Status last = OsError("connect " + host + ":" + port, ECONNREFUSED);
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      freeaddrinfo(list);
      return fd;
    }
    last = OsError("connect " + host + ":" + port);
    close(fd);
  }
  freeaddrinfo(list);
  return last;
}

// Parses "PacketSize=1000" (hex) out of a qSupported reply; 0 if absent or absurd.
size_t ParsePacketSize(std::string_view features) {
  constexpr std::string_view kKey = "PacketSize=";
  const size_t at = features.find(kKey);
  if (at == std::string_view::npos) return 0;
  size_t value = 0;
  for (size_t i = at + kKey.size(); i < features.size() && features[i] != ';'; ++i) {
    const char c = static_cast<char>(features[i] | 0x20);  // lower case
    const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (digit < 0) return 0;
    value = value * 16 + static_cast<size_t>(digit);
    if (value > GdbRemote::kMaxPacketBytes) return 0;
  }
  return value;
}

}  // namespace

GdbRemote::GdbRemote(int fd, std::string name, Options options)
    : fd_(fd), name_(std::move(name)), options_(options) {}

GdbRemote::~GdbRemote() { Close(); }

Result<std::unique_ptr<GdbRemote>> GdbRemote::Connect(std::string_view endpoint, Options options) {
  Result<int> fd = InvalidArgumentError("empty endpoint");
  if (endpoint.rfind("unix:", 0) == 0) {
    fd = ConnectUnix(std::string(endpoint.substr(5)));
  } else {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == endpoint.size()) {
      return InvalidArgumentError("'" + std::string(endpoint) +
                                  "': expected HOST:PORT or unix:/path");
    }
    std::string host(endpoint.substr(0, colon));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);  // [::1]:1234
    }
    fd = ConnectTcp(host, std::string(endpoint.substr(colon + 1)));
  }
  if (!fd) return fd.error();
  return FromFd(*fd, std::string(endpoint), options);
}

std::unique_ptr<GdbRemote> GdbRemote::FromFd(int fd, std::string name, Options options) {
  return std::unique_ptr<GdbRemote>(new GdbRemote(fd, std::move(name), options));
}

void GdbRemote::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Status GdbRemote::Gone(std::string_view why) {
  Close();
  return UnavailableError(name_ + ": gdb stub " + std::string(why));
}

Status GdbRemote::WriteAll(std::string_view bytes) {
  if (fd_ < 0) return UnavailableError(name_ + ": gdb stub connection is closed");
  while (!bytes.empty()) {
    // Non-blocking, so a stub that stops reading times out below instead of hanging us.
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, static_cast<int>(options_.timeout.count())) <= 0) {
        return Gone("does not accept data (timed out)");
      }
      continue;
    }
    if (n <= 0) return Gone(std::string("write failed: ") + std::strerror(errno));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status();
}

Result<bool> GdbRemote::Fill(Clock::time_point deadline) {
  if (fd_ < 0) return UnavailableError(name_ + ": gdb stub connection is closed");
  if (rx_pos_ > 0 && rx_pos_ == rx_.size()) {
    rx_.clear();
    rx_pos_ = 0;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd p{fd_, POLLIN, 0};
  const int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
  if (ready < 0 && errno == EINTR) return true;  // the caller loops and checks the deadline
  if (ready < 0) return Gone(std::string("poll failed: ") + std::strerror(errno));
  if (ready == 0) return false;
  char buf[16384];
  const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n == 0) return Gone("closed the connection");
  if (n < 0) return Gone(std::string("read failed: ") + std::strerror(errno));
  // Bytes read and not yet consumed are bounded: a stub that never ends a packet is broken.
  if (rx_pos_ > 0) {
    rx_.erase(0, rx_pos_);
    rx_pos_ = 0;
  }
  if (rx_.size() + static_cast<size_t>(n) > kMaxPacketBytes + 4) {
    return Gone("sends more than a packet's worth without ending it");
  }
  rx_.append(buf, static_cast<size_t>(n));
  return true;
}

Result<bool> GdbRemote::PeekByte(Clock::time_point deadline, char* c) {
  while (rx_pos_ == rx_.size()) {
    VMEMFS_ASSIGN_OR_RETURN(bool got, Fill(deadline));
    if (!got && Clock::now() >= deadline) return false;
  }
  *c = rx_[rx_pos_];
  return true;
}

Result<bool> GdbRemote::NextByte(Clock::time_point deadline, char* c) {
  VMEMFS_ASSIGN_OR_RETURN(bool got, PeekByte(deadline, c));
  if (got) ++rx_pos_;
  return got;
}

Result<std::optional<std::string>> GdbRemote::ReadPacket(Clock::time_point deadline) {
  for (;;) {
    char c = 0;
    // Anything before '$' is an ack, a NAK or line noise: skipped.
    do {
      VMEMFS_ASSIGN_OR_RETURN(bool got, NextByte(deadline, &c));
      if (!got) return std::optional<std::string>();
    } while (c != '$');
    std::string raw;
    for (;;) {
      VMEMFS_ASSIGN_OR_RETURN(bool got, NextByte(deadline, &c));
      if (!got) return std::optional<std::string>();
      if (c == '#') break;
      if (c == '$') return Gone("sent '$' inside a packet");
      if (raw.size() >= kMaxPacketBytes) return Gone("sent a packet over 1 MiB");
      raw.push_back(c);
    }
    char sum[2];
    for (char& s : sum) {
      VMEMFS_ASSIGN_OR_RETURN(bool got, NextByte(deadline, &s));
      if (!got) return std::optional<std::string>();
    }
    const std::optional<std::string> expected = rsp::FromHex(std::string_view(sum, 2));
    if (!expected || static_cast<uint8_t>((*expected)[0]) != rsp::Checksum(raw)) {
      if (no_ack_) return Gone("sent a packet with a bad checksum");
      VMEMFS_TRY(WriteAll("-"));  // ask for it again
      continue;
    }
    if (!no_ack_) VMEMFS_TRY(WriteAll("+"));
    std::optional<std::string> decoded = rsp::Decode(raw, kMaxPacketBytes);
    if (!decoded) return Gone("sent a malformed packet (escape or run length)");
    return decoded;
  }
}

Status GdbRemote::SendPacket(std::string_view packet, Clock::time_point deadline) {
  const std::string framed = rsp::Frame(packet);
  for (int attempt = 0; attempt < kMaxSendAttempts; ++attempt) {
    VMEMFS_TRY(WriteAll(framed));
    if (no_ack_) return Status();
    for (;;) {
      char c = 0;
      VMEMFS_ASSIGN_OR_RETURN(bool got, PeekByte(deadline, &c));
      if (!got) return Gone("did not acknowledge a packet (timed out)");
      // A packet before the ack (the reply, or a stop reply sent earlier) implies it.
      if (c == '$') return Status();
      ++rx_pos_;
      if (c == '+') return Status();
      if (c == '-') break;  // resend
    }
  }
  return Gone("rejected a packet " + std::to_string(kMaxSendAttempts) + " times");
}

Result<std::string> GdbRemote::ReadReply(Clock::time_point deadline, bool want_stop,
                                         std::string* output) {
  for (;;) {
    VMEMFS_ASSIGN_OR_RETURN(std::optional<std::string> reply, ReadPacket(deadline));
    if (!reply) return Gone("did not answer (timed out)");
    if (rsp::IsStopReply(*reply) && !want_stop) {
      ++async_stops_;
      continue;
    }
    if (output != nullptr && reply->size() > 1 && (*reply)[0] == 'O' && *reply != "OK") {
      std::optional<std::string> text = rsp::FromHex(std::string_view(*reply).substr(1));
      if (!text) return Gone("sent malformed console output");
      if (output->size() + text->size() > kMaxPacketBytes) return Gone("sent too much output");
      output->append(*text);
      continue;
    }
    return std::move(*reply);
  }
}

Result<std::string> GdbRemote::Command(std::string_view packet, bool want_stop) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  VMEMFS_TRY(SendPacket(packet, deadline));
  return ReadReply(deadline, want_stop, nullptr);
}

Result<std::string> GdbRemote::CommandWithOutput(std::string_view packet, std::string* output,
                                                 std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  VMEMFS_TRY(SendPacket(packet, deadline));
  return ReadReply(deadline, false, output);
}

Status GdbRemote::Send(std::string_view packet) {
  return SendPacket(packet, Clock::now() + options_.timeout);
}

Result<bool> GdbRemote::Interrupt(std::chrono::milliseconds timeout) {
  VMEMFS_TRY(WriteAll("\x03"));
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    VMEMFS_ASSIGN_OR_RETURN(std::optional<std::string> reply, ReadPacket(deadline));
    if (!reply) return false;
    if (rsp::IsStopReply(*reply)) return true;
  }
}

Result<bool> GdbRemote::DrainAsync() {
  bool stopped = false;
  // Bounded: a stub that never stops talking must not keep the caller here.
  for (int i = 0; i < 64; ++i) {
    VMEMFS_ASSIGN_OR_RETURN(bool got, Fill(Clock::now()));
    if (!got) break;
  }
  // Only whole packets are consumed; a partial one stays for the next reader.
  while (rx_.find('#', rx_pos_) != std::string::npos && rx_.size() - rx_.find('#', rx_pos_) >= 3) {
    VMEMFS_ASSIGN_OR_RETURN(std::optional<std::string> packet, ReadPacket(Clock::now()));
    if (!packet) break;
    if (rsp::IsStopReply(*packet)) {
      ++async_stops_;
      stopped = true;
    }
  }
  return stopped;
}

// multiprocess+ is announced because QEMU keeps it on from an earlier client that asked for
// it; asking always makes thread ids ("pPID.TID") and detach ("D;PID") predictable.
Status GdbRemote::Handshake() {
  VMEMFS_ASSIGN_OR_RETURN(features_, Command("qSupported:multiprocess+;swbreak+;hwbreak+"));
  if (features_.empty()) return UnsupportedError(name_ + ": gdb stub does not answer qSupported");
  if (const size_t size = ParsePacketSize(features_); size >= 64) packet_size_ = size;
  if (features_.find("QStartNoAckMode+") != std::string::npos) {
    Result<std::string> reply = Command("QStartNoAckMode");
    if (!reply) return reply.error();
    no_ack_ = *reply == "OK";
  }
  return Status();
}

}  // namespace vmemfs::drivers
