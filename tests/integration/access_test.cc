// Memory files are secrets: owner-only modes, read-only unless --write-memory, and with it
// writes reach the source.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

std::string MakeRaw(const TempDir& dir, size_t size) {
  std::string path = dir.path() + "/small.raw";
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = char(i * 7 + 3);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(AccessTest, FilesArePrivateToTheOwnerAndReadOnlyByDefault) {
  TempDir tmp;
  std::string raw = MakeRaw(tmp, 1 << 20);
  Mount m({"g=" + raw});
  ASSERT_TRUE(m.ok()) << m.error();
  struct stat st;
  ASSERT_EQ(stat((m / "g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0500u);
  EXPECT_EQ(st.st_uid, getuid());
  for (const char* f : {"g/pmem", "g/info"}) {
    ASSERT_EQ(stat((m / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 07777, 0400u) << f;
  }
  errno = 0;
  EXPECT_LT(open((m / "g/pmem").c_str(), O_WRONLY), 0);
  EXPECT_TRUE(errno == EROFS || errno == EACCES) << strerror(errno);
}

TEST(AccessTest, WithRwWritesReachTheSnapshot) {
  TempDir tmp;
  std::string raw = MakeRaw(tmp, 1 << 20);
  {
    Mount m({"--write-memory", "g=" + raw});
    ASSERT_TRUE(m.ok()) << m.error();
    struct stat st;
    ASSERT_EQ(stat((m / "g/pmem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    int fd = open((m / "g/pmem").c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << strerror(errno);
    const char msg[] = "written through vmemfs";
    EXPECT_EQ(pwrite(fd, msg, sizeof msg, 4093), ssize_t(sizeof msg));  // across a page
    char back[sizeof msg] = {};
    EXPECT_EQ(pread(fd, back, sizeof back, 4093), ssize_t(sizeof back));
    EXPECT_STREQ(back, msg);
    // Past the end of memory.
    EXPECT_LT(pwrite(fd, msg, sizeof msg, 1 << 20), 0);
    close(fd);
  }
  std::string after = ReadFile(raw);
  EXPECT_EQ(after.substr(4093, 22), "written through vmemfs");
  EXPECT_EQ(after[4092], char(4092 * 7 + 3));
}

TEST(AccessTest, PmemCanBeMemoryMappedWithItsTrueSize) {
  // yara maps whole files using st_size.
  TempDir tmp;
  std::string raw = MakeRaw(tmp, 3 << 20);
  Mount m({"g=" + raw});
  ASSERT_TRUE(m.ok()) << m.error();
  int fd = open((m / "g/pmem").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat st;
  fstat(fd, &st);
  ASSERT_EQ(st.st_size, 3 << 20);
  void* p = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  std::string expected = ReadFile(raw);
  EXPECT_EQ(memcmp(p, expected.data(), expected.size()), 0);
  munmap(p, st.st_size);
  close(fd);
}

}  // namespace
}  // namespace vmemfs::testing
