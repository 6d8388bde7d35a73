// mount(8): `mount -t fuse.vmemfs SOURCE MNT -o ...` and an fstab line run vmemfs through
// mount.fuse3 with mount(8)'s generic options; `rw` among them must not make guest memory
// writable, `write-memory` must.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "mount_fixture.h"
#include "shell.h"
#include "staged_install.h"

namespace vmemfs::testing {
namespace {

class MountCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mount(8) needs root";
    snapshot_ = dir_.path() + "/web.raw";
    mnt_ = dir_.path() + "/mnt";
    std::ofstream(snapshot_) << std::string(4096, '\0') << "marker-in-ram"
                             << std::string(1 << 20, '\0');
    ASSERT_EQ(mkdir(mnt_.c_str(), 0700), 0);
    // mount(8) runs helpers with a fixed PATH (/usr/local/sbin first): the staged install's
    // binary is linked there for the test, unless a vmemfs is already installed there.
    struct stat st;
    if (lstat(kLink, &st) != 0) {
      ASSERT_EQ(symlink(StagedBinary().c_str(), kLink), 0) << strerror(errno);
      linked_ = true;
    } else if (!S_ISLNK(st.st_mode) || ReadLink(kLink) != StagedBinary()) {
      GTEST_SKIP() << kLink << " exists: this test would run it instead of this build";
    }
  }
  void TearDown() override {
    if (IsMountPoint(mnt_)) (void)Shell("umount " + Quoted(mnt_));
    if (linked_) unlink(kLink);
  }
  static std::string ReadLink(const char* path) {
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  ShellResult Mount(const std::string& args) { return Shell("mount " + args); }

  static constexpr const char* kLink = "/usr/local/sbin/vmemfs";
  bool linked_ = false;
  // The errno of writing one byte to `path` (0 if it was written).
  static int WriteErrno(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) return errno;
    int err = pwrite(fd, "X", 1, 4096) == 1 ? 0 : errno;
    close(fd);
    return err;
  }

  TempDir dir_;
  std::string snapshot_, mnt_;
};

TEST_F(MountCommandTest, MountTypeFuseVmemfsWithGenericOptionsIsReadOnly) {
  ShellResult r = Mount("-t fuse.vmemfs " + Quoted("web=" + snapshot_) + " " + Quoted(mnt_) +
                        " -o rw,nosuid,nodev,noatime");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(PreadAt(mnt_ + "/web/pmem", 4096, 13), "marker-in-ram");
  EXPECT_EQ(WriteErrno(mnt_ + "/web/pmem"), EROFS);
  ShellResult line = Shell("grep ' " + mnt_ + " ' /proc/mounts");
  EXPECT_NE(line.out.find("fuse.vmemfs"), std::string::npos) << line.out;
  EXPECT_NE(line.out.find("nosuid"), std::string::npos) << line.out;
}

TEST_F(MountCommandTest, WriteMemoryAsMountOption) {
  ShellResult r = Mount("-t fuse.vmemfs " + Quoted("web=" + snapshot_) + " " + Quoted(mnt_) +
                        " -o rw,write-memory,threads=2");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(WriteErrno(mnt_ + "/web/pmem"), 0);
  ASSERT_EQ(Shell("umount " + Quoted(mnt_)).status, 0);
  EXPECT_EQ(PreadAt(snapshot_, 4096, 13), "Xarker-in-ram");
}

TEST_F(MountCommandTest, FstabLine) {
  std::string fstab = dir_.path() + "/fstab";
  std::ofstream(fstab) << "# vmemfs test\n"
                       << "web=" << snapshot_ << " " << mnt_
                       << " fuse.vmemfs noatime,nofail,threads=2 0 0\n";
  ShellResult r = Mount("-T " + Quoted(fstab) + " " + Quoted(mnt_));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(PreadAt(mnt_ + "/web/pmem", 4096, 13), "marker-in-ram");
}

// A fleet mount has no SOURCE; fstab's first field says none. libvirt's built-in test driver
// (test:///default, no daemon) has one running domain, "test".
TEST_F(MountCommandTest, NoneWithLibvirtConnection) {
  ShellResult r =
      Mount("-t fuse.vmemfs none " + Quoted(mnt_) + " -o rw,libvirt=test:///default");
  ASSERT_EQ(r.status, 0) << r.out;
  ShellResult ls = Shell("ls " + Quoted(mnt_));
  EXPECT_EQ(ls.out, "test\n");
}

}  // namespace
}  // namespace vmemfs::testing
