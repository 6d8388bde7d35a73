#include "vmi/linux/system_map.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "vmi/linux/guest_root.h"
#include "vmi/linux/overrides.h"

namespace vmemfs::vmi::linux_os {
namespace {

TEST(SystemMapTest, ParsesNmLinesAndSkipsModuleSymbols) {
  auto syms = ParseSystemMap(
      "0000000000000000 A fixed_percpu_data\n"
      "ffffffff81000000 T _stext\r\n"
      "\n"
      "ffffffff82000010 d some_data\n"
      "ffffffffc0001000 t mod_fn\t[ext4]\n",
      "map");
  ASSERT_TRUE(syms) << syms.error().ToString();
  ASSERT_EQ(syms->size(), 3u);
  EXPECT_EQ((*syms)[1], (Symbol{0xffffffff81000000ull, 'T', "_stext", ""}));
  EXPECT_EQ((*syms)[2].type, 'd');
}

TEST(SystemMapTest, ErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"ffffffff81000000 T a\nzzzz T b\n", "m:2: bad address"},
      {"ffffffff81000000 TT a\n", "m:1: bad symbol type"},
      {"ffffffff81000000 T\n", "m:1: no symbol name"},
      {"ffffffff81000000 T a b\n", "m:1: unexpected text"},
      {"1ffffffff81000000 T a\n", "m:1: bad address"},
      {"\n\n", "m: no symbols"},
      {"{\"metadata\": 1}\n", "m:1: bad address"},
  };
  for (const Case& c : cases) {
    auto r = ParseSystemMap(c.text, "m");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
  }
}

TEST(SystemMapTest, MissingFileIsAnOsErrorNamingIt) {
  auto r = ReadSystemMap("/nonexistent/System.map");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kOs);
  EXPECT_NE(r.error().message().find("/nonexistent/System.map"), std::string::npos);
}

VmcoreInfo Info(const std::string& extra) {
  auto info = VmcoreInfo::Parse("OSRELEASE=6.1.0\n" + extra);
  EXPECT_TRUE(info) << info.error().ToString();
  return std::move(*info);
}

TEST(SystemMapTest, SlideUsesStextThenKernelOffsetAndLeavesPerCpuAlone) {
  LoadedOverrides loaded;
  loaded.symbols = {{0x0, 'A', "fixed_percpu_data", ""},
                    {0xffffffff81000000ull, 'T', "_stext", ""},
                    {0xffffffff81000100ull, 'T', "f", ""}};
  std::string how;
  auto by_stext =
      SlideFileSymbols(loaded, Info("SYMBOL(_stext)=ffffffff9a000000\nKERNELOFFSET=1\n"), &how);
  ASSERT_TRUE(by_stext) << by_stext.error().ToString();
  EXPECT_EQ(by_stext->Lookup("f")->address, 0xffffffff9a000100ull);
  EXPECT_EQ(by_stext->Lookup("fixed_percpu_data")->address, 0u);
  EXPECT_NE(how.find("_stext"), std::string::npos);

  loaded.symbols.erase(loaded.symbols.begin() + 1);  // no _stext in the file
  auto by_offset = SlideFileSymbols(loaded, Info("KERNELOFFSET=2000000\n"), &how);
  ASSERT_TRUE(by_offset);
  EXPECT_EQ(by_offset->Lookup("f")->address, 0xffffffff83000100ull);
  EXPECT_NE(how.find("KERNELOFFSET"), std::string::npos);
}

// The real guest's /proc/kallsyms (module symbols included) reads as a System.map.
TEST(SystemMapTest, RealGuestKallsymsParse) {
  std::string path = ::vmemfs::testing::GuestRoot() + "/l4/truth/kallsyms.txt";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << "no test guest at " << path;
  auto syms = ReadSystemMap(path);
  ASSERT_TRUE(syms) << syms.error().ToString();
  EXPECT_GT(syms->size(), 50'000u);
  bool stext = false;
  for (const Symbol& s : *syms) stext |= s.name == "_stext";
  EXPECT_TRUE(stext);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
