#include "drivers/gdb_remote.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "drivers/gdb_fake_stub.h"

namespace vmemfs::drivers {
namespace {

using std::chrono::milliseconds;
using testing::FakeStub;

std::unique_ptr<GdbRemote> ClientOf(FakeStub& stub, milliseconds timeout = milliseconds(2000)) {
  return GdbRemote::FromFd(stub.TakeClientFd(), "fake", GdbRemote::Options{timeout});
}

TEST(RspTest, FrameAddsChecksumAndEscapes) {
  EXPECT_EQ(rsp::Frame("OK"), "$OK#9a");
  EXPECT_EQ(rsp::Frame("g"), "$g#67");
  // '#' '$' '}' '*' are escaped as '}' + (byte ^ 0x20).
  EXPECT_EQ(rsp::Frame("a#b").substr(0, 5),
            "$a}\x03"
            "b");
}

TEST(RspTest, DecodeRunLengthAndEscapes) {
  EXPECT_EQ(rsp::Decode("0* ", 100), "0000");  // ' ' = 32: 3 more
  EXPECT_EQ(rsp::Decode("}\x03", 100), "#");
  EXPECT_EQ(rsp::Decode("ab", 100), "ab");
  EXPECT_FALSE(rsp::Decode("*!", 100));      // nothing to repeat
  EXPECT_FALSE(rsp::Decode("0*", 100));      // truncated
  EXPECT_FALSE(rsp::Decode("0*\x01", 100));  // count below 3
  EXPECT_FALSE(rsp::Decode("}", 100));
  EXPECT_FALSE(rsp::Decode("0*~", 10));  // longer than the limit
}

TEST(RspTest, StopRepliesAndHex) {
  EXPECT_TRUE(rsp::IsStopReply("T02thread:01;"));
  EXPECT_TRUE(rsp::IsStopReply("S05"));
  EXPECT_TRUE(rsp::IsStopReply("W00"));
  EXPECT_FALSE(rsp::IsStopReply("OK"));
  EXPECT_FALSE(rsp::IsStopReply("0102"));
  EXPECT_FALSE(rsp::IsStopReply("Tzz"));
  EXPECT_EQ(rsp::ToHex("\x01\xab"), "01ab");
  EXPECT_EQ(rsp::FromHex("01AB"), std::string("\x01\xab"));
  EXPECT_FALSE(rsp::FromHex("0"));
  EXPECT_FALSE(rsp::FromHex("0g"));
}

TEST(GdbRemoteTest, CommandWithAcks) {
  FakeStub stub([](const std::string& p) {
    if (p.rfind("qSupported", 0) == 0) return rsp::Frame("PacketSize=1000;vContSupported+");
    return rsp::Frame(p == "g" ? "0011" : "");
  });
  auto remote = ClientOf(stub);
  ASSERT_TRUE(remote->Handshake().ok());
  EXPECT_EQ(remote->packet_size(), 0x1000u);
  EXPECT_FALSE(remote->no_ack());
  auto reply = remote->Command("g");
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(*reply, "0011");
  // The client acked both replies.
  for (int i = 0; i < 100 && stub.received().back() != '+'; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(stub.received().back(), '+');
}

TEST(GdbRemoteTest, NoAckModeWhenOffered) {
  FakeStub stub([](const std::string& p) {
    if (p.rfind("qSupported", 0) == 0) return rsp::Frame("PacketSize=200;QStartNoAckMode+");
    if (p == "QStartNoAckMode") return rsp::Frame("OK");
    return rsp::Frame("E01");
  });
  auto remote = ClientOf(stub);
  ASSERT_TRUE(remote->Handshake().ok());
  EXPECT_TRUE(remote->no_ack());
  ASSERT_TRUE(remote->Command("m0,1"));
  std::this_thread::sleep_for(milliseconds(20));
  const std::string all = stub.received();
  const std::string after = all.substr(all.find("$m0,1"));
  EXPECT_EQ(after.find('+'), std::string::npos) << after;
}

TEST(GdbRemoteTest, BadChecksumIsNakedAndResent) {
  int calls = 0;
  FakeStub* self = nullptr;
  FakeStub stub([&](const std::string& p) -> std::string {
    if (p == "\x03") return "";
    ++calls;
    return "$0102#00";  // wrong checksum
  });
  self = &stub;
  auto remote = ClientOf(stub);
  // The client answers '-'; the fake then sends the good packet.
  std::thread resend([&] {
    for (int i = 0; i < 200 && self->received().find('-') == std::string::npos; ++i) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    self->Push(rsp::Frame("0102"));
  });
  auto reply = remote->Command("m0,2");
  resend.join();
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(*reply, "0102");
  EXPECT_EQ(calls, 1);
}

TEST(GdbRemoteTest, GarbageBeforePacketIsSkipped) {
  FakeStub stub([](const std::string&) { return "xx\x01\xff+" + rsp::Frame("OK"); });
  auto remote = ClientOf(stub);
  auto reply = remote->Command("Hg1");
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(*reply, "OK");
}

TEST(GdbRemoteTest, RunLengthReply) {
  FakeStub stub([](const std::string&) { return rsp::Frame("0* 1") /* escapes '*' */; });
  // Frame escapes '*', so build the run-length packet by hand.
  FakeStub rle([](const std::string&) {
    const std::string body = "0* 1";
    const uint8_t sum = rsp::Checksum(body);
    char tail[4];
    std::snprintf(tail, sizeof(tail), "#%02x", sum);
    return "$" + body + tail;
  });
  auto remote = ClientOf(rle);
  auto reply = remote->Command("m0,3");
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(*reply, "00001");
  auto escaped = ClientOf(stub)->Command("m0,3");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(*escaped, "0* 1");
}

TEST(GdbRemoteTest, OversizePacketClosesTheConnection) {
  FakeStub stub([](const std::string&) {
    return "$" + std::string(GdbRemote::kMaxPacketBytes + 10, 'a');  // never ends
  });
  auto remote = ClientOf(stub);
  auto reply = remote->Command("m0,1");
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(remote->gone());
  EXPECT_EQ(remote->Command("g").error().code(), ErrorCode::kUnavailable);
}

TEST(GdbRemoteTest, SilentStubTimesOut) {
  FakeStub stub([](const std::string&) { return std::string(); });
  auto remote = ClientOf(stub, milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  auto reply = remote->Command("g");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(reply.error().message().find("timed out"), std::string::npos);
  EXPECT_LT(elapsed, milliseconds(1500));
  EXPECT_TRUE(remote->gone());
}

TEST(GdbRemoteTest, EndOfFileMeansGone) {
  FakeStub stub([](const std::string&) { return std::string(); });
  auto remote = ClientOf(stub);
  stub.CloseStub();
  auto reply = remote->Command("g");
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(remote->gone());
  auto drained = remote->DrainAsync();
  EXPECT_FALSE(drained);
}

TEST(GdbRemoteTest, StrayStopRepliesAreSkippedAndCounted) {
  FakeStub stub([](const std::string& p) {
    return rsp::Frame("T02thread:01;") + rsp::Frame(p == "?" ? "S05" : "OK");
  });
  auto remote = ClientOf(stub);
  auto reply = remote->Command("Hg1");
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "OK");
  EXPECT_EQ(remote->async_stops(), 1u);
  auto stop = remote->Command("?", /*want_stop=*/true);
  ASSERT_TRUE(stop);
  EXPECT_EQ(*stop, "T02thread:01;");
}

TEST(GdbRemoteTest, InterruptWaitsForStopReply) {
  FakeStub stub([](const std::string& p) {
    return p == "\x03" ? rsp::Frame("T02thread:01;") : std::string();
  });
  auto remote = ClientOf(stub);
  auto stopped = remote->Interrupt(milliseconds(500));
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(*stopped);
}

TEST(GdbRemoteTest, InterruptWithoutAnswerIsNotAnError) {
  FakeStub stub([](const std::string&) { return std::string(); });
  auto remote = ClientOf(stub);
  auto stopped = remote->Interrupt(milliseconds(100));
  ASSERT_TRUE(stopped);
  EXPECT_FALSE(*stopped);
  EXPECT_FALSE(remote->gone());
}

TEST(GdbRemoteTest, AsyncStopIsDrained) {
  FakeStub stub([](const std::string&) { return std::string(); });
  auto remote = ClientOf(stub);
  stub.Push(rsp::Frame("T02thread:01;"));
  std::this_thread::sleep_for(milliseconds(50));
  auto drained = remote->DrainAsync();
  ASSERT_TRUE(drained);
  EXPECT_TRUE(*drained);
}

TEST(GdbRemoteTest, MonitorOutputIsCollected) {
  FakeStub stub([](const std::string&) {
    return rsp::Frame("O" + rsp::ToHex("hello ")) + rsp::Frame("O" + rsp::ToHex("world")) +
           rsp::Frame("OK");
  });
  auto remote = ClientOf(stub);
  std::string text;
  auto reply = remote->CommandWithOutput("qRcmd,00", &text, milliseconds(1000));
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, "OK");
  EXPECT_EQ(text, "hello world");
}

TEST(GdbRemoteTest, ConnectRejectsBadEndpoints) {
  EXPECT_EQ(GdbRemote::Connect("nocolon", {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(GdbRemote::Connect("unix:/nonexistent/vmemfs-gdb.sock", {}).error().code(),
            ErrorCode::kOs);
}

}  // namespace
}  // namespace vmemfs::drivers
