// Bad sources: a one-line error naming the file and the problem, a non-zero exit status,
// nothing mounted, no crash.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class BadInputTest : public ::testing::Test {
 protected:
  // Runs vmemfs on `source` and checks the error contract.
  void ExpectRejected(const std::string& source, const std::string& must_mention,
                      const std::string& problem) {
    TempDir mnt;
    RunResult r = RunVmemfs({source}, mnt.path());
    EXPECT_NE(r.status, 0) << source;
    EXPECT_LT(r.status, 128) << "killed by a signal: " << r.err;
    EXPECT_FALSE(r.mounted) << source;
    EXPECT_FALSE(IsMountPoint(mnt.path()));
    std::string err = TrimNewline(r.err);
    EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line: " << err;
    EXPECT_NE(err.find(must_mention), std::string::npos) << err;
    std::string lower = err;
    for (char& c : lower) c = char(tolower(c));
    EXPECT_NE(lower.find(problem), std::string::npos) << err;
  }
  TempDir tmp_;
  std::string path(const std::string& name) const { return tmp_.path() + "/" + name; }
};

TEST_F(BadInputTest, MissingFile) {
  ExpectRejected(path("missing.raw"), "missing.raw", "no such file");
}

TEST_F(BadInputTest, EmptyFile) {
  WriteBytes(path("empty.raw"), "");
  ExpectRejected(path("empty.raw"), "empty.raw", "empty");
}

TEST_F(BadInputTest, Directory) {
  mkdir(path("dir.raw").c_str(), 0700);
  ExpectRejected(path("dir.raw"), "dir.raw", "directory");
}

TEST_F(BadInputTest, TruncatedElfCore) {
  std::string core = ReadFile(GuestDir("l4") + "/core.elf");
  ASSERT_GT(core.size(), 1u << 20);
  // Cut inside the notes, then inside the ELF header.
  for (size_t n : {size_t(3000), size_t(40)}) {
    WriteBytes(path("cut.elf"), core.substr(0, n));
    ExpectRejected(path("cut.elf"), "cut.elf", "");
  }
}

TEST_F(BadInputTest, ElfCoreWhoseMemoryExtendsPastTheFile) {
  std::string core = ReadFile(GuestDir("l4") + "/core.elf");
  WriteBytes(path("short.elf"), core.substr(0, core.size() / 2));
  ExpectRejected(path("short.elf"), "short.elf", "past end of file");
}

TEST_F(BadInputTest, ElfThatIsNotACore) {
  // A program, not a memory image: ELF magic, wrong type.
  ExpectRejected("/bin/true", "/bin/true", "core");
}

TEST_F(BadInputTest, LimeWithAnInvertedRange) {
  struct {
    uint32_t magic = 0x4C694D45, version = 1;
    uint64_t start = 0x2000, end = 0x1000, reserved = 0;
  } header;
  WriteBytes(path("bad.lime"), std::string(reinterpret_cast<const char*>(&header), sizeof header) +
                                   std::string(4096, 'x'));
  ExpectRejected(path("bad.lime"), "bad.lime", "");
}

TEST_F(BadInputTest, TwoSourcesWithTheSameName) {
  WriteBytes(path("a.raw"), std::string(4096, 'a'));
  TempDir mnt;
  RunResult r = RunVmemfs({"x=" + path("a.raw"), "x=" + path("a.raw")}, mnt.path());
  EXPECT_NE(r.status, 0);
  EXPECT_FALSE(r.mounted);
  EXPECT_NE(r.err.find("'x'"), std::string::npos) << r.err;
}

TEST_F(BadInputTest, MountpointThatIsNotADirectory) {
  WriteBytes(path("a.raw"), std::string(4096, 'a'));
  RunResult r = RunVmemfs({path("a.raw")}, path("a.raw"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
}

TEST_F(BadInputTest, UnknownFuseOption) {
  WriteBytes(path("a.raw"), std::string(4096, 'a'));
  TempDir mnt;
  RunResult r = RunVmemfs({"-o", "no_such_option", path("a.raw")}, mnt.path());
  EXPECT_NE(r.status, 0);
  EXPECT_FALSE(r.mounted);
}

}  // namespace
}  // namespace vmemfs::testing
