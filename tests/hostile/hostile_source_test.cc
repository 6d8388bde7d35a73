// Hostile sources that must be refused before anything is mounted: absurd ELF headers on a
// real guest's core, files that are no files. Each refusal is one line, comes at once, and
// vmemfs exits with an error (no signal, no hang).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "damage.h"
#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

constexpr int kTimeoutSeconds = 20;

std::string Le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

uint64_t Get64(const std::string& bytes, size_t at) {
  uint64_t v;
  std::memcpy(&v, bytes.data() + at, 8);
  return v;
}
uint16_t Get16(const std::string& bytes, size_t at) {
  uint16_t v;
  std::memcpy(&v, bytes.data() + at, 2);
  return v;
}

// File offset of the first PT_LOAD program header of the guest's ELF64 core.
size_t FirstLoadHeader(const std::string& core) {
  const uint64_t phoff = Get64(core, 0x20);
  const uint16_t phentsize = Get16(core, 0x36), phnum = Get16(core, 0x38);
  for (uint16_t i = 0; i < phnum; ++i) {
    const size_t at = phoff + size_t{i} * phentsize;
    if (core[at] == 1 && core[at + 1] == 0 && core[at + 2] == 0 && core[at + 3] == 0) return at;
  }
  return 0;
}

class HostileSourceTest : public ::testing::Test {
 protected:
  void ExpectRefused(const std::string& source, const std::string& must_mention) {
    TempDir mnt;
    auto start = std::chrono::steady_clock::now();
    RunResult r = RunVmemfs({source}, mnt.path(), kTimeoutSeconds);
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_NE(r.status, -1) << source << ": still running after " << kTimeoutSeconds << " s";
    EXPECT_LT(seconds, kTimeoutSeconds) << source;
    EXPECT_GT(r.status, 0) << source;
    EXPECT_LT(r.status, 128) << "killed by a signal: " << r.err;
    EXPECT_FALSE(r.mounted) << source;
    std::string err = TrimNewline(r.err);
    EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line: " << err;
    EXPECT_NE(err.find(must_mention), std::string::npos) << err;
  }
  // A copy of l4's core with `bytes` at `offset`.
  std::string Damaged(uint64_t offset, const std::string& bytes) {
    std::string path = tmp_.path() + "/core.elf";
    EXPECT_TRUE(CopyCore("l4", path));
    EXPECT_TRUE(Patch(path, offset, bytes));
    return path;
  }
  TempDir tmp_;
};

TEST_F(HostileSourceTest, LoadSegmentWithAnEndlessMemSize) {
  size_t ph = FirstLoadHeader(CoreBytes("l4"));
  ASSERT_NE(ph, 0u);
  ExpectRefused(Damaged(ph + 0x28, Le64(~0ull)), "2^52");
}

TEST_F(HostileSourceTest, LoadSegmentBeyondThePhysicalAddressWidth) {
  size_t ph = FirstLoadHeader(CoreBytes("l4"));
  ASSERT_NE(ph, 0u);
  ExpectRefused(Damaged(ph + 0x18, Le64(1ull << 52)), "2^52");
}

TEST_F(HostileSourceTest, ElfClass32OnAnX86_64Core) {
  ExpectRefused(Damaged(4, std::string(1, '\x01')), "ELFCLASS32");
}

TEST_F(HostileSourceTest, FifoSocketAndDeviceAreRefusedAtOnce) {
  const std::string fifo = tmp_.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExpectRefused(fifo, "FIFO");

  const std::string sock = tmp_.path() + "/sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ExpectRefused(sock, "socket");
  close(fd);

  ExpectRefused("/dev/zero", "character device");
}

TEST_F(HostileSourceTest, NameWithAControlCharacter) {
  ExpectRefused("a\nb=" + GuestDir("l4") + "/core.elf", "control character");
}

}  // namespace
}  // namespace vmemfs::testing
