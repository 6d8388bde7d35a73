// isf/<release>.json on mounted snapshots of the real guests: one file, made when first read
// (not at mount, not when listed), a Volatility 3 ISF with the guest's own banner and its
// kallsyms at link-time addresses. Its types are checked against the guest's BTF, and read
// back by vmemfs's own ISF reader, in tests/vmi/linux/isf_writer_test.cc and isf_test.cc;
// Volatility itself is run by hand (README: "Volatility 3").
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

using Json = nlohmann::json;

std::string Base64Decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int n = 0;
  for (char c : text) {
    if (c == '=') break;
    bits = bits << 6 | static_cast<uint32_t>(kAlphabet.find(c));
    if ((n += 6) >= 8) out += static_cast<char>((bits >> (n -= 8)) & 0xff);
  }
  return out;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class IsfMountTest : public ::testing::TestWithParam<const char*> {};

TEST_P(IsfMountTest, OneIsfMadeAtFirstReadWithTheGuestsBannerAndSymbols) {
  std::string raw = GuestDir(GetParam()) + "/raw.mem";
  if (!std::filesystem::exists(raw)) GTEST_SKIP() << "no guest " << raw;
  std::string release = TrimNewline(ReadFile(GuestDir(GetParam()) + "/truth/uname.txt"));
  {
    // Listing does not make it (`info` says so once it is made; a snapshot's info is made once,
    // so this mount is only listed).
    Mount listed({"g=" + raw});
    ASSERT_TRUE(listed.ok()) << listed.error();
    auto top = List(listed / "g");
    EXPECT_NE(std::find(top.begin(), top.end(), "isf"), top.end());
    ASSERT_EQ(List(listed / "g/isf"), std::vector<std::string>{release + ".json"});
    EXPECT_EQ(InfoValue(ReadFile(listed / "g/info"), "isf"), "") << "made before it was read";
  }
  Mount m({"g=" + raw});
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(List(m / "g/isf"), std::vector<std::string>{release + ".json"});

  auto start = std::chrono::steady_clock::now();
  std::string text = ReadFile(m / ("g/isf/" + release + ".json"));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("first_read_seconds", std::to_string(seconds));
  RecordProperty("bytes", std::to_string(text.size()));
  std::cout << GetParam() << ": isf " << text.size() << " bytes, first read " << seconds << " s\n";
  EXPECT_EQ(std::filesystem::file_size(m / ("g/isf/" + release + ".json")), text.size());

  Json isf = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(isf.is_discarded());
  EXPECT_EQ(isf["metadata"]["format"], "6.2.0");
  EXPECT_EQ(Base64Decode(isf["symbols"]["linux_banner"]["constant_data"]),
            ReadFile(GuestDir(GetParam()) + "/truth/banner.txt") + '\0');
  std::string info = ReadFile(m / "g/info");
  EXPECT_EQ(InfoValue(info, "isf"), "isf/" + release + ".json") << info;
  EXPECT_NE(info.find("made in"), std::string::npos) << info;
  std::string kaslr = InfoValue(info, "kaslr-offset");
  ASSERT_FALSE(kaslr.empty());
  uint64_t offset = std::stoull(kaslr, nullptr, 16);
  for (const char* name : {"init_task", "init_files", "init_top_pgt", "linux_banner", "_stext"}) {
    uint64_t truth = TruthSymbol(GetParam(), name);
    ASSERT_NE(truth, 0u) << name;
    EXPECT_EQ(isf["symbols"][name]["address"].get<uint64_t>(), truth - offset) << name;
  }
  EXPECT_EQ(isf["user_types"]["task_struct"]["kind"], "struct");

  EXPECT_EQ(ReadFile(m / ("g/isf/" + release + ".json")), text);  // made once
}

INSTANTIATE_TEST_SUITE_P(Guests, IsfMountTest, ::testing::Values("l4", "l5"));

// The ISF describes the kernel build, not one boot: the two guests run the same kernel with
// different KASLR slides and paging modes, and the running l4 guest (qemu:) is read through
// another driver, yet all three ISFs are the same bytes (symbols unslid, same BTF, banner).
TEST(IsfMountTest, SameKernelGivesTheSameIsfWhateverTheBootAndSource) {
  std::string l4 = GuestDir("l4"), l5 = GuestDir("l5");
  if (!std::filesystem::exists(l4 + "/raw.mem") || !std::filesystem::exists(l5 + "/raw.mem") ||
      !std::filesystem::exists(l4 + "/qmp.sock")) {
    GTEST_SKIP() << "needs both guests, l4 running";
  }
  Mount m({"a=" + l4 + "/raw.mem", "b=" + l5 + "/raw.mem", "live=qemu:" + l4 + "/qmp.sock"});
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_NE(InfoValue(ReadFile(m / "a/info"), "kaslr-offset"),
            InfoValue(ReadFile(m / "b/info"), "kaslr-offset"));
  std::string name = TrimNewline(ReadFile(l4 + "/truth/uname.txt")) + ".json";
  std::string a = ReadFile(m / ("a/isf/" + name));
  ASSERT_GT(a.size(), 1000000u);
  EXPECT_TRUE(a == ReadFile(m / ("b/isf/" + name)));
  EXPECT_TRUE(a == ReadFile(m / ("live/isf/" + name)));
}

}  // namespace
}  // namespace vmemfs::testing
