// `cmake --install` puts a working program, its man page, its bash completion and the systemd
// unit template where Debian's tools look for them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "shell.h"
#include "staged_install.h"

namespace vmemfs::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(CmakeInstall, InstallsTheProgramAndItsFiles) {
  std::string error;
  const std::string& prefix = StagedPrefix(&error);
  ASSERT_FALSE(prefix.empty()) << error;
  for (const char* rel : {"/bin/vmemfs", "/share/man/man1/vmemfs.1",
                          "/share/bash-completion/completions/vmemfs",
                          "/lib/systemd/system/vmemfs-libvirt@.service"}) {
    EXPECT_TRUE(Exists(prefix + rel)) << prefix + rel << " missing; install said:\n" << error;
  }
  // Nothing else: no static libraries, headers or test programs.
  ShellResult files = Shell("cd " + Quoted(prefix) + " && find . -type f | sort");
  EXPECT_EQ(files.out,
            "./bin/vmemfs\n./lib/systemd/system/vmemfs-libvirt@.service\n"
            "./share/bash-completion/completions/vmemfs\n./share/man/man1/vmemfs.1\n");
}

TEST(CmakeInstall, TheInstalledProgramRuns) {
  ShellResult r = Shell(Quoted(StagedBinary()) + " --version");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(r.out.starts_with("vmemfs ")) << r.out;
}

TEST(CmakeInstall, ManFindsTheManPageThroughThePrefix) {
  // man looks in ../share/man of each PATH directory: the installed bin/ is enough.
  ShellResult r = Shell("PATH=" + Quoted(StagedPrefix() + "/bin") + ":$PATH MANPATH= " +
                        "MANWIDTH=80 man -P cat vmemfs");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("virtual machines' memory as files"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("@PROJECT_VERSION@"), std::string::npos) << "version not substituted";
}

}  // namespace
}  // namespace vmemfs::testing
