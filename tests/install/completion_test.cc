// The installed bash completion offers every option `vmemfs --help` lists, and the same long
// names as -o items.
#include <gtest/gtest.h>

#include <sstream>

#include "shell.h"
#include "staged_install.h"

namespace vmemfs::testing {
namespace {

// The completions bash offers for the command line `words` (the last word is completed).
std::set<std::string> Complete(const std::string& words) {
  std::string script = "PATH=" + Quoted(StagedPrefix() + "/bin") + ":$PATH; . " +
                       Quoted(StagedPrefix() + "/share/bash-completion/completions/vmemfs") +
                       "; COMP_WORDS=(" + words + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); " +
                       "_vmemfs; printf '%s\\n' \"${COMPREPLY[@]}\"";
  ShellResult r = Shell("bash -c " + Quoted(script));
  std::set<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

TEST(Completion, OffersEveryOptionOfHelp) {
  ShellResult help = Shell(Quoted(StagedBinary()) + " --help");
  std::set<std::string> options = HelpOptions(help.out);
  ASSERT_FALSE(options.empty()) << help.out;
  EXPECT_EQ(Complete("vmemfs -"), options);
}

TEST(Completion, OffersLongOptionsAsMountOptionItems) {
  std::set<std::string> items = Complete("vmemfs -o allow_other,li");
  EXPECT_EQ(items, std::set<std::string>{"allow_other,libvirt"});
  EXPECT_TRUE(Complete("vmemfs -o ''").contains("write-memory"));
  EXPECT_FALSE(Complete("vmemfs -o ''").contains("help"));
}

}  // namespace
}  // namespace vmemfs::testing
