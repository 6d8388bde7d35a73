// --symbols / --offsets / --isf on real guests' snapshots: a System.map made from the guest's
// own /proc/kallsyms (un-slid) gives the same symbols as memory alone, the override is really
// used (a fake symbol shows, a shifted map gives wrong addresses), and bad files stop vmemfs
// before anything is mounted. (The ISF is checked against the whole OS layer in
// tests/vmi/linux/isf_test.cc, where the guest's BTF can be turned into one.)
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

struct MapLine {
  uint64_t address;
  std::string type, name;
};

// The guest's core-kernel symbols (module lines dropped), as /proc/kallsyms printed them.
std::vector<MapLine> TruthKernelSymbols(const std::string& guest) {
  std::ifstream in(GuestDir(guest) + "/truth/kallsyms.txt");
  std::vector<MapLine> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find('[') != std::string::npos) continue;
    std::istringstream f(line);
    std::string addr;
    MapLine m;
    f >> addr >> m.type >> m.name;
    m.address = std::stoull(addr, nullptr, 16);
    out.push_back(m);
  }
  return out;
}

// Writes a System.map: truth addresses minus `unslide` (kernel half only), each symbol except
// _stext further moved by `shift`, plus `extra` lines.
std::string WriteMap(const TempDir& dir, const std::string& guest, uint64_t unslide,
                     uint64_t shift = 0, const std::string& extra = "") {
  std::string path = dir.path() + "/System.map";
  std::ofstream out(path);
  for (const MapLine& m : TruthKernelSymbols(guest)) {
    uint64_t a = m.address;
    if (a >> 63) a -= unslide + (m.name == "_stext" ? 0 : shift);
    char buf[17];
    snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(a));
    out << buf << " " << m.type << " " << m.name << "\n";
  }
  out << extra;
  return path;
}

// The KASLR offset the guest's VMCOREINFO gave ("kaslr-offset: 0x... (VMCOREINFO ...)").
uint64_t KaslrOffset(const Mount& m) {
  std::string v = InfoValue(ReadFile(m / "g/info"), "kaslr-offset");
  return v.empty() ? 0 : std::stoull(v, nullptr, 16);
}

class OverridesTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    raw_ = GuestDir(GetParam()) + "/raw.mem";
    if (!std::filesystem::exists(raw_)) GTEST_SKIP() << "no guest " << raw_;
  }
  std::string raw_;
  TempDir files_;
};

TEST_P(OverridesTest, SystemMapGivesTheSameSymbolsAndIsReallyUsed) {
  Mount plain({"g=" + raw_});
  ASSERT_TRUE(plain.ok()) << plain.error();
  uint64_t offset = KaslrOffset(plain);
  ASSERT_NE(offset, 0u) << ReadFile(plain / "g/info");
  std::string kallsyms_plain = ReadFile(plain / "g/symbols/kallsyms");

  uint64_t stext = TruthSymbol(GetParam(), "_stext");
  char fake[64];
  snprintf(fake, sizeof(fake), "%016llx T vmemfs_fake_symbol\n",
           static_cast<unsigned long long>(stext - offset + 0x40));
  std::string map = WriteMap(files_, GetParam(), offset, 0, fake);
  Mount with({"--symbols", map, "g=" + raw_});
  ASSERT_TRUE(with.ok()) << with.error();
  std::string info = ReadFile(with / "g/info");
  EXPECT_NE(info.find("# System.map " + map), std::string::npos) << info;
  std::string kallsyms = ReadFile(with / "g/symbols/kallsyms");
  for (const char* name : {"linux_banner", "init_task", "_stext", "schedule", "jiffies"}) {
    char want[32];
    snprintf(want, sizeof(want), "%016llx",
             static_cast<unsigned long long>(TruthSymbol(GetParam(), name)));
    EXPECT_NE(kallsyms.find(std::string(want) + " "), std::string::npos) << name;
    EXPECT_NE(kallsyms_plain.find(std::string(want) + " "), std::string::npos) << name;
  }
  std::string banner = ReadFile(GuestDir(GetParam()) + "/truth/banner.txt");
  EXPECT_EQ(ReadFile(with / "g/symbols/kernel/linux_banner").substr(0, banner.size()), banner);
  EXPECT_TRUE(std::filesystem::exists(with / "g/symbols/kernel/vmemfs_fake_symbol"));
  EXPECT_FALSE(std::filesystem::exists(plain / "g/symbols/kernel/vmemfs_fake_symbol"));
  EXPECT_GT(std::distance(std::filesystem::directory_iterator(with / "g/proc"), {}), 300);
}

TEST_P(OverridesTest, ShiftedSystemMapGivesWrongAddresses) {
  std::string map;
  {
    Mount plain({"g=" + raw_});
    ASSERT_TRUE(plain.ok()) << plain.error();
    map = WriteMap(files_, GetParam(), KaslrOffset(plain), 0x1000);
  }
  Mount with({"--symbols", map, "g=" + raw_});
  ASSERT_TRUE(with.ok()) << with.error();
  std::string banner = ReadFile(GuestDir(GetParam()) + "/truth/banner.txt");
  EXPECT_NE(ReadFile(with / "g/symbols/kernel/linux_banner").substr(0, banner.size()), banner);
}

TEST_P(OverridesTest, OffsetsFileKeepsSymbolsButCannotListProcesses) {
  std::string conf = files_.path() + "/libvmi.conf";
  std::ofstream(conf) << "guest {\n  ostype = \"Linux\";\n  linux_tasks = 0x4c8;\n"
                         "  linux_mm = 0x518;\n  linux_pid = 0x5c8;\n  linux_name = 0x7a0;\n"
                         "  linux_pgd = 0x50;\n}\n";
  Mount with({"--offsets", conf, "g=" + raw_});
  ASSERT_TRUE(with.ok()) << with.error();
  std::string info = ReadFile(with / "g/info");
  std::string types = InfoValue(info, "types");
  EXPECT_NE(types.find("unavailable"), std::string::npos) << info;
  EXPECT_NE(types.find("task_struct"), std::string::npos) << info;
  EXPECT_NE(types.find("LibVMI offsets give only"), std::string::npos) << info;
  EXPECT_EQ(info.find("BTF"), std::string::npos) << info;
  std::string banner = ReadFile(GuestDir(GetParam()) + "/truth/banner.txt");
  EXPECT_EQ(ReadFile(with / "g/symbols/kernel/linux_banner").substr(0, banner.size()), banner);
}

INSTANTIATE_TEST_SUITE_P(Guests, OverridesTest, ::testing::Values("l4", "l5"));

// Each bad override file: one line naming the option and file, exit 1, nothing mounted.
TEST(OverridesBadFilesTest, RefusedBeforeMounting) {
  std::string raw = GuestDir("l4") + "/raw.mem";
  if (!std::filesystem::exists(raw)) GTEST_SKIP() << "no guest " << raw;
  TempDir dir, mnt;
  std::string garbage = dir.path() + "/garbage";
  std::ofstream(garbage) << "hello world\nthis is not a map\n";
  std::string two = dir.path() + "/two.conf";
  std::ofstream(two) << "a { linux_pid = 1; }\nb { linux_pid = 2; }\n";
  struct Case {
    std::vector<std::string> args;
    std::string want;
  } cases[] = {
      {{"--symbols", dir.path() + "/missing"}, "--symbols: " + dir.path() + "/missing: No such"},
      {{"--symbols", garbage}, "--symbols: " + garbage + ":1: bad address"},
      {{"--isf", garbage}, "--isf: " + garbage + ":1: not JSON"},
      {{"--offsets", two}, "--offsets: " + two + ":2: more than one guest block"},
      {{"--offsets", two, "--isf", garbage}, "give one"},
  };
  for (Case& c : cases) {
    c.args.push_back("g=" + raw);
    RunResult r = RunVmemfs(c.args, mnt.path());
    EXPECT_EQ(r.status, 1) << c.want;
    EXPECT_FALSE(r.mounted) << c.want;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace vmemfs::testing
