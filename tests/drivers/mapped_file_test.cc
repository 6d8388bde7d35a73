// Mapped files that another program changes under the mapping: a read of lost bytes never
// kills the process and is never taken for data; leases announce changes before they happen;
// what is not a regular file is refused without waiting.
#include "drivers/mapped_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "drivers/snapshot_driver.h"
#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::Bytes;
using testing::Pattern;
using testing::TempDir;

constexpr size_t kSize = 64 * 4096;

class MappedFileTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string path_ = tmp_.Write("snap.raw", Pattern(kSize, 3));
};

// Copies like every reader of a mapping does (memcpy), then checks.
Status CopyAndCheck(const MappedFile& file, uint64_t offset, std::span<std::byte> out) {
  std::memcpy(out.data(), file.bytes().data() + offset, out.size());
  return file.watch().Check(offset, out.size());
}

bool MentionsFact(const std::vector<Fact>& facts, const std::string& key,
                  const std::string& text) {
  for (const Fact& f : facts) {
    if (f.key == key && (f.value + " " + f.how).find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_F(MappedFileTest, ReadingWhatATruncationTookIsAnErrorNotACrash) {
  auto file = MappedFile::Open(path_, {});
  ASSERT_TRUE(file) << file.error().ToString();
  std::array<std::byte, 16> buf;
  ASSERT_TRUE(CopyAndCheck(*file, kSize - 16, buf).ok());
  ASSERT_EQ(truncate(path_.c_str(), kSize / 2 + 100), 0);  // mid-page: a partial last page

  // A page wholly gone raises SIGBUS: handled, zeros, and the check says so.
  Status gone = CopyAndCheck(*file, kSize - 16, buf);
  EXPECT_EQ(gone.code(), ErrorCode::kUnavailable) << gone.ToString();
  EXPECT_EQ(file->watch().intact(), kSize / 2 + 100);
  EXPECT_FALSE(MappingsUntouched());
  EXPECT_TRUE(file->watch().touched());
  // Bytes before the cut are still the file's.
  ASSERT_TRUE(CopyAndCheck(*file, 0, buf).ok());
  const Bytes want = Pattern(kSize, 3);
  EXPECT_EQ(Bytes(buf.begin(), buf.end()), Bytes(want.begin(), want.begin() + 16));
  // The tail of the last page raises no signal; the check knows anyway.
  EXPECT_FALSE(CopyAndCheck(*file, kSize / 2 + 96, buf).ok());
  EXPECT_TRUE(MentionsFact(file->Describe(), "file-lost", "EIO"));
  EXPECT_TRUE(MentionsFact(file->Describe(), "file-changed", std::to_string(kSize / 2 + 100)));
}

TEST_F(MappedFileTest, RecheckSeesAShrinkWithinThePage) {
  auto file = MappedFile::Open(path_, {});
  ASSERT_TRUE(file);
  ASSERT_EQ(truncate(path_.c_str(), kSize - 10), 0);
  ASSERT_TRUE(file->watch().Recheck());
  EXPECT_EQ(file->watch().intact(), kSize - 10);
  std::array<std::byte, 16> buf;
  EXPECT_EQ(CopyAndCheck(*file, kSize - 16, buf).code(), ErrorCode::kUnavailable);
}

TEST_F(MappedFileTest, ClosingATouchedFileRestoresTheFastPath) {
  const bool before = MappingsUntouched();
  {
    auto file = MappedFile::Open(path_, {});
    ASSERT_TRUE(file);
    ASSERT_EQ(truncate(path_.c_str(), 0), 0);
    file->watch().Recheck();
    EXPECT_FALSE(MappingsUntouched());
  }
  EXPECT_EQ(MappingsUntouched(), before);
}

TEST_F(MappedFileTest, ALeaseIsGivenBackBeforeAnotherProgramTruncates) {
  auto file = MappedFile::Open(path_, {.lease = true});
  ASSERT_TRUE(file);
  ASSERT_TRUE(file->watch().stable()) << "no lease on a file in " << tmp_.path();
  EXPECT_TRUE(MentionsFact(file->Describe(), "file-watch", "lease"));
  // A reader in the middle of a splice holds the truncation off until it is done.
  ASSERT_TRUE(file->watch().BeginRead());
  auto truncated = std::async(std::launch::async, [this] {
    return truncate(path_.c_str(), 4096);  // breaks the lease, waits for it
  });
  EXPECT_EQ(truncated.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  EXPECT_FALSE(file->watch().stable());  // no new reader may splice
  EXPECT_EQ(file->watch().intact(), kSize);  // nothing lost yet
  file->watch().EndRead();
  ASSERT_EQ(truncated.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(truncated.get(), 0);
  EXPECT_FALSE(file->watch().BeginRead());
  file->watch().EndRead();
  EXPECT_TRUE(MentionsFact(file->Describe(), "file-watch", "lease was broken"));
  std::array<std::byte, 16> buf;
  EXPECT_EQ(CopyAndCheck(*file, 8192, buf).code(), ErrorCode::kUnavailable);
}

TEST_F(MappedFileTest, NoLeaseWhileAnotherWriterHasTheFileOpen) {
  int writer = open(path_.c_str(), O_WRONLY);
  ASSERT_GE(writer, 0);
  auto file = MappedFile::Open(path_, {.lease = true});
  close(writer);
  ASSERT_TRUE(file);
  EXPECT_FALSE(file->watch().stable());
  EXPECT_TRUE(MentionsFact(file->Describe(), "file-watch", "no lease"));
}

TEST_F(MappedFileTest, WhatIsNotARegularFileIsRefusedWithoutWaiting) {
  const std::string fifo = tmp_.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string sock = tmp_.path() + "/sock";
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  struct Case {
    std::string path, says;
  } cases[] = {{fifo, "FIFO"}, {sock, "socket"}, {"/dev/null", "character device"},
               {tmp_.path(), "directory"}};
  for (const Case& c : cases) {
    // A FIFO opened for reading would wait for a writer forever: this must return at once.
    auto opened = std::async(std::launch::async, [&c] { return MappedFile::Open(c.path, {}); });
    ASSERT_EQ(opened.wait_for(std::chrono::seconds(5)), std::future_status::ready) << c.path;
    auto file = opened.get();
    ASSERT_FALSE(file) << c.path;
    EXPECT_NE(file.error().message().find(c.says), std::string::npos) << file.error().message();
    EXPECT_NE(file.error().message().find(c.path), std::string::npos) << file.error().message();
  }
  close(s);
}

TEST_F(MappedFileTest, SnapshotDriverStopsSplicingAndFailsLostBytes) {
  auto driver = OpenSnapshot(path_, {});
  ASSERT_TRUE(driver) << driver.error().ToString();
  Driver& d = **driver;
  ASSERT_TRUE(d.FileBacked(0).has_value());
  ASSERT_FALSE(d.may_change());
  std::array<std::byte, 64> buf;
  ASSERT_TRUE(d.ReadPhys(kSize - 64, buf).ok());
  auto truncated = std::async(std::launch::async, [this] { return truncate(path_.c_str(), 8192); });
  ASSERT_EQ(truncated.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(truncated.get(), 0);
  EXPECT_TRUE(d.may_change());
  EXPECT_FALSE(d.FileBacked(0).has_value());
  EXPECT_TRUE(d.Mapped(0).empty());
  Status lost = d.ReadPhys(kSize - 64, buf);
  EXPECT_EQ(lost.code(), ErrorCode::kUnavailable) << lost.ToString();
  EXPECT_NE(lost.message().find(path_), std::string::npos);
  EXPECT_TRUE(d.ReadPhys(0, buf).ok());
  bool lost_fact = false;
  for (const Fact& f : d.Describe()) lost_fact |= f.key == "file-lost";
  EXPECT_TRUE(lost_fact);
}

}  // namespace
}  // namespace vmemfs::drivers
