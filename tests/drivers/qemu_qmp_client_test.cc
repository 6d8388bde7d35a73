// QmpClient against a fake QMP server on a socketpair: framing, ids, events, errors, and a
// hostile or hung peer (timeouts, garbage, EOF, endless lines).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "drivers/qmp_client.h"

namespace vmemfs::drivers {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\r\n";

// The server's end: reads requests line by line and writes raw replies.
class Peer {
 public:
  explicit Peer(int fd) : fd_(fd) {}
  ~Peer() { close(fd_); }
  void Send(std::string_view s) { ASSERT_EQ(write(fd_, s.data(), s.size()), ssize_t(s.size())); }
  json Receive() {
    std::string line;
    char c;
    while (read(fd_, &c, 1) == 1 && c != '\n') line += c;
    return json::parse(line, nullptr, false);
  }
  // Receives one request and returns its id.
  json ReceiveId() { return Receive()["id"]; }
  void Reply(const json& id, std::string_view return_json) {
    Send(R"({"return": )" + std::string(return_json) + R"(, "id": )" + id.dump() + "}\r\n");
  }
  // Greeting + the reply to qmp_capabilities.
  void Handshake() {
    Send(kGreeting);
    json req = Receive();
    EXPECT_EQ(req["execute"], "qmp_capabilities");
    Reply(req["id"], "{}");
  }

 private:
  int fd_;
};

// Runs `server` on one end of a socketpair in a thread; the client gets the other end.
class FakeQmp {
 public:
  explicit FakeQmp(std::function<void(Peer&)> server, QmpOptions options = {milliseconds(2000)}) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    thread_ = std::thread([fd = fds[1], server] {
      Peer peer(fd);
      server(peer);
    });
    client_ = QmpClient::Adopt(fds[0], "fake.sock", options);
  }
  ~FakeQmp() {
    if (client_ && *client_) (*client_)->reset();  // closes our end: a blocked read ends
    thread_.join();
  }
  Result<std::unique_ptr<QmpClient>>& client() { return *client_; }

 private:
  std::thread thread_;
  std::optional<Result<std::unique_ptr<QmpClient>>> client_;
};

TEST(QmpClientTest, SkipsEventsAndStaleRepliesAndReturnsReturn) {
  FakeQmp fake([](Peer& peer) {
    peer.Handshake();
    json id = peer.ReceiveId();
    peer.Send(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})"
              "\r\n");
    peer.Send(R"({"return": {"wrong": true}, "id": 999})"
              "\r\n");
    peer.Reply(id, R"({"status": "running", "running": true})");
    json hmp = peer.Receive();
    EXPECT_EQ(hmp["execute"], "human-monitor-command");
    EXPECT_EQ(hmp["arguments"]["command-line"], "info version");
    peer.Reply(hmp["id"], R"("7.2.22\r\n")");
  });
  ASSERT_TRUE(fake.client()) << fake.client().error().ToString();
  QmpClient& qmp = **fake.client();
  EXPECT_EQ(qmp.version(), "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)");
  Result<std::string> r = qmp.Qmp("query-status", "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(json::parse(*r)["status"], "running");
  Result<std::string> h = qmp.Hmp("info version");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(*h, "7.2.22\r\n");
}

TEST(QmpClientTest, QmpErrorsBecomeStatuses) {
  FakeQmp fake([](Peer& peer) {
    peer.Handshake();
    peer.Send(
        R"({"id": )" + peer.ReceiveId().dump() +
        R"(, "error": {"class": "CommandNotFound", "desc": "The command x has not been found"}})"
        "\r\n");
    peer.Send(R"({"id": )" + peer.ReceiveId().dump() +
              R"(, "error": {"class": "GenericError", "desc": "bad path"}})"
              "\r\n");
  });
  ASSERT_TRUE(fake.client());
  Result<std::string> r = (*fake.client())->Qmp("x", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  r = (*fake.client())->Qmp("qom-get", R"({"path": "/x", "property": "y"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("bad path"), std::string::npos);
  EXPECT_TRUE((*fake.client())->connected());
  EXPECT_EQ((*fake.client())->Qmp("x", "[1]").error().code(), ErrorCode::kInvalidArgument);
}

TEST(QmpClientTest, HungPeerTimesOutAndLateReplyIsSkipped) {
  FakeQmp fake(
      [](Peer& peer) {
        peer.Handshake();
        json late = peer.ReceiveId();  // never answered in time
        json next = peer.ReceiveId();
        peer.Reply(late, R"("late")");
        peer.Reply(next, R"("next")");
      },
      QmpOptions{milliseconds(200)});
  ASSERT_TRUE(fake.client());
  const auto t0 = std::chrono::steady_clock::now();
  Result<std::string> r = (*fake.client())->Qmp("query-status", "");
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_GE(waited, milliseconds(190));
  EXPECT_LT(waited, milliseconds(1500));
  r = (*fake.client())->Qmp("query-status", "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, R"("next")");
}

TEST(QmpClientTest, GarbageClosesTheConnection) {
  FakeQmp fake([](Peer& peer) {
    peer.Handshake();
    peer.ReceiveId();
    peer.Send("\x01\xff not json at all\r\n");
  });
  ASSERT_TRUE(fake.client());
  Result<std::string> r = (*fake.client())->Qmp("query-status", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
  EXPECT_FALSE((*fake.client())->connected());
  EXPECT_EQ((*fake.client())->Qmp("query-status", "").error().code(), ErrorCode::kUnavailable);
}

TEST(QmpClientTest, EndlessLineIsBounded) {
  FakeQmp fake(
      [](Peer& peer) {
        peer.Handshake();
        peer.ReceiveId();
        peer.Send(std::string(8192, 'x'));
      },
      QmpOptions{milliseconds(2000), 4096});
  ASSERT_TRUE(fake.client());
  Result<std::string> r = (*fake.client())->Qmp("query-status", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
}

TEST(QmpClientTest, EofIsUnavailable) {
  FakeQmp fake([](Peer& peer) {
    peer.Handshake();
    peer.ReceiveId();
  });  // the server's end closes here
  ASSERT_TRUE(fake.client());
  Result<std::string> r = (*fake.client())->Qmp("query-status", "");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE((*fake.client())->connected());
}

TEST(QmpClientTest, BadGreetingsFail) {
  FakeQmp not_qmp([](Peer& peer) { peer.Send("{\"hello\": 1}\r\n"); });
  ASSERT_FALSE(not_qmp.client());
  EXPECT_EQ(not_qmp.client().error().code(), ErrorCode::kBadData);
  FakeQmp silent([](Peer& peer) { peer.Receive(); }, QmpOptions{milliseconds(100)});
  ASSERT_FALSE(silent.client());
  EXPECT_EQ(silent.client().error().code(), ErrorCode::kUnavailable);
  FakeQmp odd_version([](Peer& peer) {
    peer.Send(R"({"QMP": {"version": {"qemu": "seven"}}})"
              "\r\n");
    json req = peer.Receive();
    peer.Reply(req["id"], "{}");
  });
  ASSERT_TRUE(odd_version.client());
  EXPECT_EQ((*odd_version.client())->version(), "unknown");
}

TEST(QmpClientTest, ConnectToMissingSocketFails) {
  Result<std::unique_ptr<QmpClient>> r = QmpClient::Connect("/nonexistent/qmp.sock");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kOs);
  EXPECT_NE(r.error().message().find("/nonexistent/qmp.sock"), std::string::npos);
}

}  // namespace
}  // namespace vmemfs::drivers
