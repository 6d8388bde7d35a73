// The man page vmemfs(1) documents exactly the options `vmemfs --help` lists, so the two cannot
// drift, and renders without groff warnings.
#include <gtest/gtest.h>

#include "mount_fixture.h"
#include "shell.h"
#include "staged_install.h"

namespace vmemfs::testing {
namespace {

TEST(ManPage, ListsExactlyTheOptionsOfHelp) {
  ShellResult help = Shell(Quoted(VmemfsBinary()) + " --help");
  ASSERT_EQ(help.status, 0) << help.out;
  std::set<std::string> from_help = HelpOptions(help.out);
  std::set<std::string> from_man = ManOptions(ReadFile(SourceDir() + "/doc/vmemfs.1"));
  ASSERT_TRUE(from_help.contains("--write-memory")) << help.out;
  EXPECT_EQ(from_man, from_help);
}

TEST(ManPage, RendersWithoutWarnings) {
  ShellResult r = Shell("groff -man -Tutf8 -ww -z " +
                        Quoted(StagedPrefix() + "/share/man/man1/vmemfs.1"));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace vmemfs::testing
