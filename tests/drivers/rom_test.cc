#include "drivers/rom.h"

#include <gtest/gtest.h>

namespace vmemfs::drivers {
namespace {

std::optional<std::string> Rom(const char* how) { return std::string(how); }

TEST(SplitRomTest, RomAboveTheHighestRamIsLeftOutAndRomBelowItStays) {
  // QEMU q35 with 4 GiB: PAM windows inside low RAM, the BIOS between the two RAM ranges.
  const std::vector<MemoryPart> parts = {
      {0, 0xc0000, {}},
      {0xc0000, 0xc1000, Rom("pam")},
      {0xc1000, 0x80000000, {}},
      {0xfffc0000, 0x100000000, Rom("bios")},
      {0x100000000, 0x180000000, {}},
  };
  size_t kept = 0;
  EXPECT_EQ(SplitRom(parts, kept),
            (std::vector<RomRange>{{0xc0000, 0xc1000, "pam", true},
                                   {0xfffc0000, 0x100000000, "bios", true}}));
  EXPECT_EQ(kept, 5u);
  // 256 MiB: nothing above the BIOS is RAM.
  const std::vector<MemoryPart> small = {
      {0, 0x10000000, {}},
      {0xfff00000, 0xfffc0000, Rom("bios")},
      {0xfffc0000, 0x100000000, Rom("bios")},
  };
  EXPECT_EQ(SplitRom(small, kept),
            (std::vector<RomRange>{{0xfff00000, 0x100000000, "bios", false}}));
  EXPECT_EQ(kept, 1u);
  EXPECT_TRUE(SplitRom({}, kept).empty());
  EXPECT_EQ(kept, 0u);
}

TEST(ResetVectorFirmwareTest, OnlyASegmentOfItsOwnEndingAt4GiB) {
  EXPECT_TRUE(ResetVectorFirmware(0xfffc0000, 0x100000000, 0x10000000));
  EXPECT_TRUE(ResetVectorFirmware(0xff000000, 0x100000000, 0));
  EXPECT_FALSE(ResetVectorFirmware(0xfe000000, 0x100000000, 0));           // more than 16 MiB
  EXPECT_FALSE(ResetVectorFirmware(0xfffc0000, 0x100000000, 0xfffc0000));  // continues RAM
  EXPECT_FALSE(ResetVectorFirmware(0xfffc0000, 0xffff0000, 0));            // not at 4 GiB
  EXPECT_FALSE(ResetVectorFirmware(0x100000000, 0x100001000, 0));
}

}  // namespace
}  // namespace vmemfs::drivers
