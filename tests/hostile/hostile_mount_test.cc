// What a user may try on a mounted snapshot that vmemfs must refuse or bound: namespace
// changes on a read-only mount, a process's mem reaching into the kernel half, `-o` given
// before the SOURCE.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "damage.h"
#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

class HostileMountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // -o first: the usage line puts OPTIONS before SOURCE.
    mount_ = new Mount({"-o", "fsname=vmemfs-hostile", "g=" + GuestDir("l4") + "/core.elf"});
  }
  static void TearDownTestSuite() {
    delete mount_;
    mount_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(mount_->ok()) << mount_->error(); }
  static Mount* mount_;
};
Mount* HostileMountTest::mount_ = nullptr;

TEST_F(HostileMountTest, NamespaceChangesGiveErofs) {
  const std::string dir = *mount_ / "g";
  errno = 0;
  EXPECT_LT(open((dir + "/new").c_str(), O_CREAT | O_WRONLY, 0600), 0);
  EXPECT_EQ(errno, EROFS) << "touch";
  errno = 0;
  EXPECT_NE(mkdir((dir + "/newdir").c_str(), 0700), 0);
  EXPECT_EQ(errno, EROFS) << "mkdir";
  errno = 0;
  EXPECT_NE(unlink((dir + "/info").c_str()), 0);
  EXPECT_EQ(errno, EROFS) << "rm";
  errno = 0;
  EXPECT_NE(rename((dir + "/info").c_str(), (dir + "/info2").c_str()), 0);
  EXPECT_EQ(errno, EROFS) << "mv";
  errno = 0;
  EXPECT_NE(rmdir((dir + "/proc").c_str()), 0);
  EXPECT_EQ(errno, EROFS) << "rmdir";
  EXPECT_NE(ReadFile(dir + "/info").find("name: g"), std::string::npos);
}

TEST_F(HostileMountTest, ProcessMemEndsAtTheTopOfUserSpace) {
  struct stat st;
  ASSERT_EQ(stat((*mount_ / "g/proc/1/mem").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 1ull << 47);  // 4-level guest
  // linux_banner's offset (kmem's rule) is beyond the file: nothing of the kernel half.
  const uint64_t banner = TruthSymbol("l4", "linux_banner");
  ASSERT_NE(banner, 0u);
  EXPECT_EQ(PreadAt(*mount_ / "g/proc/1/mem", KmemOffset("l4", banner), 64), "");
  const std::string truth = ReadFile(GuestDir("l4") + "/truth/banner.txt");
  EXPECT_EQ(PreadAt(*mount_ / "g/kmem", KmemOffset("l4", banner), truth.size()), truth);
}

}  // namespace
}  // namespace vmemfs::testing
