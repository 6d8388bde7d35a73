// CPack's Debian package: the program and its files under /usr, dependencies declared (the
// shared libraries dpkg-shlibdeps finds, fuse3 for mount.fuse3), and apt can install it here.
// apt runs in simulation (-s): installing for real would replace files other tests use.
#include <gtest/gtest.h>

#include "mount_fixture.h"
#include "shell.h"

namespace vmemfs::testing {
namespace {

class DebPackageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ShellResult r = Shell("cpack --config " + Quoted(BuildDir() + "/CPackConfig.cmake") +
                          " -B " + Quoted(dir_->path()));
    log_ = r.out;
    deb_ = Shell("ls " + Quoted(dir_->path()) + "/vmemfs_*.deb").out;
    deb_ = r.status == 0 ? TrimNewline(deb_) : "";
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ASSERT_FALSE(deb_.empty()) << log_; }

  static TempDir* dir_;
  static std::string deb_, log_;
};
TempDir* DebPackageTest::dir_;
std::string DebPackageTest::deb_, DebPackageTest::log_;

TEST_F(DebPackageTest, DeclaresItsDependencies) {
  std::string depends = Shell("dpkg-deb -f " + Quoted(deb_) + " Depends").out;
  for (const char* dep : {"libfuse3-3", "libc6", "libstdc++6", "libbpf1", "fuse3"}) {
    EXPECT_NE(depends.find(dep), std::string::npos) << dep << " not in Depends: " << depends;
  }
#if VMEMFS_WITH_LIBVIRT
  EXPECT_NE(depends.find("libvirt0"), std::string::npos) << depends;
#endif
  EXPECT_EQ(TrimNewline(Shell("dpkg-deb -f " + Quoted(deb_) + " Package").out), "vmemfs");
}

TEST_F(DebPackageTest, HoldsTheProgramManPageCompletionAndUnit) {
  std::string contents = Shell("dpkg-deb -c " + Quoted(deb_)).out;
  for (const char* path : {"./usr/bin/vmemfs", "./usr/share/man/man1/vmemfs.1",
                           "./usr/share/bash-completion/completions/vmemfs",
                           "./usr/lib/systemd/system/vmemfs-libvirt@.service"}) {
    EXPECT_NE(contents.find(path), std::string::npos) << path << " missing:\n" << contents;
  }
}

TEST_F(DebPackageTest, ThePackagedProgramRuns) {
  TempDir root;
  ASSERT_EQ(Shell("dpkg-deb -x " + Quoted(deb_) + " " + Quoted(root.path())).status, 0);
  ShellResult r = Shell(Quoted(root.path() + "/usr/bin/vmemfs") + " --help");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
}

TEST_F(DebPackageTest, AptCanInstallIt) {
  ShellResult r = Shell("apt-get install -s " + Quoted(deb_));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Inst vmemfs"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace vmemfs::testing
