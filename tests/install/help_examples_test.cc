// `vmemfs --help` ends with three examples (a snapshot, a running QEMU, a libvirt fleet) that
// use only options and backends the program has; the snapshot one is run as written.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "mount_fixture.h"
#include "shell.h"

namespace vmemfs::testing {
namespace {

std::string Help() { return Shell(Quoted(VmemfsBinary()) + " --help").out; }

TEST(HelpExamples, HelpEndsWithThreeExamples) {
  std::string help = Help();
  std::vector<std::string> examples = HelpExamples(help);
  ASSERT_EQ(examples.size(), 3u) << help;
  // The last command is followed only by its explanation line.
  std::string tail = help.substr(help.rfind(examples.back()));
  tail.erase(tail.find_last_not_of('\n') + 1);
  EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n'), 1) << tail;
  EXPECT_NE(examples[0].find(".elf"), std::string::npos);
  EXPECT_NE(examples[1].find("=qemu:"), std::string::npos);
  EXPECT_NE(examples[2].find("--libvirt "), std::string::npos);
}

TEST(HelpExamples, ExamplesUseOnlyOptionsOfHelp) {
  std::string help = Help();
  std::set<std::string> options = HelpOptions(help);
  for (const std::string& example : HelpExamples(help)) {
    std::istringstream words(example);
    for (std::string w; words >> w;) {
      if (w.starts_with("-")) {
        EXPECT_TRUE(options.contains(w)) << w << " in: " << example;
      }
    }
  }
}

// The first example, with its paths replaced by a temporary raw snapshot and mount point.
TEST(HelpExamples, TheSnapshotExampleMounts) {
  std::string example = HelpExamples(Help()).at(0);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(example, m, std::regex(R"(vmemfs (\w+)=(\S+) (\S+))"))) << example;
  TempDir dir;
  std::string snapshot = dir.path() + "/snapshot.elf", mnt = dir.path() + "/mnt";
  {
    std::ofstream out(snapshot);
    out << std::string(4096, '\0') << "marker-in-ram" << std::string(1 << 20, '\0');
  }
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  ShellResult r = Shell(Quoted(VmemfsBinary()) + " " + m[1].str() + "=" + Quoted(snapshot) +
                        " " + Quoted(mnt));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(PreadAt(mnt + "/" + m[1].str() + "/pmem", 4096, 13), "marker-in-ram");
  EXPECT_EQ(Shell("fusermount3 -u " + Quoted(mnt)).status, 0);
}

}  // namespace
}  // namespace vmemfs::testing
