// 32-bit (compat) processes on the 64-bit guests: marker32, the marker helper built -m32,
// runs beside the 64-bit helpers (tools/guest/init.sh). Its address space is a 32-bit one
// under the 64-bit kernel's structures: maps line for line as the guest printed it, and its
// markers through mem and through the vmem/ file of their VMA.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

class CompatProcessTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CompatProcessTest, MapsAndMarkersOfA32BitProcess) {
  const std::string guest = GetParam().substr(0, 2);
  const std::string dir = GuestDir(guest);
  if (!std::filesystem::exists(dir + "/truth/markers32.txt")) {
    GTEST_SKIP() << "the guest image has no marker32 (older image)";
  }
  Mount m({"g=" + dir + "/" + GetParam().substr(3)});
  ASSERT_TRUE(m.ok()) << m.error();
  std::ifstream in(dir + "/truth/markers32.txt");
  std::string kind_word, kind, hex, text;
  int pid = 0, checked = 0;
  while (in >> kind_word >> pid >> kind >> hex >> text) {
    if (kind_word != "MARKER") continue;
    const std::string proc = m / ("g/proc/" + std::to_string(pid));
    uint64_t va = std::stoull(hex, nullptr, 16);
    EXPECT_LT(va, uint64_t{1} << 32) << "a 32-bit process's address";
    EXPECT_EQ(PreadAt(proc + "/mem", va, text.size()), text) << kind;
    bool found = false;
    for (const auto& v : std::filesystem::directory_iterator(proc + "/vmem")) {
      std::string name = v.path().filename();
      uint64_t start = std::stoull(name.substr(0, name.find('-')), nullptr, 16);
      uint64_t end = std::stoull(name.substr(name.find('-') + 1), nullptr, 16);
      if (va < start || va >= end) continue;
      found = true;
      if (va + text.size() <= end) {
        EXPECT_EQ(PreadAt(v.path(), va - start, text.size()), text) << kind;
      }
    }
    EXPECT_TRUE(found) << "no vmem file holds " << hex;
    ++checked;
  }
  ASSERT_EQ(checked, 4) << "heap, mmap, data and stack markers";
  EXPECT_EQ(TrimNewline(ReadFile(m / ("g/proc/" + std::to_string(pid) + "/comm"))), "marker32");
  EXPECT_EQ(ReadFile(m / ("g/proc/" + std::to_string(pid) + "/maps")),
            ReadFile(dir + "/truth/maps/" + std::to_string(pid) + ".txt"));
}

INSTANTIATE_TEST_SUITE_P(Guests, CompatProcessTest,
                         ::testing::Values("l4/raw.mem", "l5/raw.mem", "l4/core.elf",
                                           "l5/core.elf"),
                         [](const auto& info) {
                           return info.param.substr(0, 2) + "_" +
                                  (info.param.substr(3) == "raw.mem" ? "raw" : "elf");
                         });

}  // namespace
}  // namespace vmemfs::testing
