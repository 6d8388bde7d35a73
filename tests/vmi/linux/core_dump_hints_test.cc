// Linux's core dump hints (core_dump_hints.h): on a synthetic kernel, every check that must
// refuse a wrong address; on the real test guests' raw snapshots, against their own truth.
#include "vmi/linux/core_dump_hints.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tasks_test_guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

using testing::SyntheticKernel;

// The synthetic kernel's direct map (SyntheticKernel), plus its image: _text at
// 0xffffffff81000000 mapped by one 2 MiB page to PA 0x400000, so phys_base = -0xc00000.
class SyntheticHintsTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kText = 0xffffffff81000000ull;
  static constexpr uint64_t kTextPa = 0x400000;
  static constexpr uint64_t kPageOffsetBase = 0xffffffff81100000ull;  // the variable

  void SetUp() override {
    k_.Put64(SyntheticKernel::kPml4 + 511 * 8, 0x6000 | 3);
    k_.Put64(0x6000 + 510 * 8, 0x7000 | 3);
    k_.Put64(0x7000 + 8 * 8, kTextPa | 0x83);
    layout_.mode = PagingMode::kIa32e4;
    layout_.page_table_root = SyntheticKernel::kPml4;
    layout_.phys_base = -0xc00000;
    layout_.stext = kText + 0x1000;
    layout_.stext_pa = kTextPa + 0x1000;
    auto info = VmcoreInfo::Parse("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n");
    ASSERT_TRUE(info.has_value());
    info_ = std::make_unique<VmcoreInfo>(std::move(*info));
    SetPageOffsetBase(SyntheticKernel::kDirectMap);
  }
  void SetPageOffsetBase(uint64_t v) { k_.Put64(kTextPa + 0x100000, v); }
  SymbolTable Symbols(bool with_page_offset_base = true) {
    std::vector<Symbol> s = {{kText, 'T', "_text", ""}, {kText + 0x123456, 'B', "_end", ""}};
    if (with_page_offset_base) s.push_back({kPageOffsetBase, 'D', "page_offset_base", ""});
    return SymbolTable(std::move(s));
  }
  Result<CoreDumpHints> Find(const SymbolTable& symbols) {
    return FindCoreDumpHints(k_.mem(), *info_, layout_, symbols);
  }

  SyntheticKernel k_;
  KernelLayout layout_{};
  std::unique_ptr<VmcoreInfo> info_;
};

TEST_F(SyntheticHintsTest, FindsTheNoteTheDirectMapAndTheImage) {
  auto hints = Find(Symbols());
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_EQ(hints->note_name, "VMCOREINFO");
  EXPECT_EQ(hints->note_type, 0u);
  EXPECT_EQ(hints->note_text, info_->text());
  EXPECT_EQ(hints->direct_map_base, SyntheticKernel::kDirectMap);
  ASSERT_TRUE(hints->kernel_image.has_value());
  EXPECT_EQ(hints->kernel_image->va, kText);
  EXPECT_EQ(hints->kernel_image->pa, kTextPa);
  EXPECT_EQ(hints->kernel_image->length, 0x124000u);  // _end rounded up to a page
}

TEST_F(SyntheticHintsTest, WithoutPageOffsetBaseTheModesDefaultIsChecked) {
  // The synthetic direct map is the 4-level default, so it checks out.
  auto hints = Find(Symbols(/*with_page_offset_base=*/false));
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_EQ(hints->direct_map_base, 0xffff888000000000ull);
}

TEST_F(SyntheticHintsTest, ADirectMapThatDoesNotMapStextIsRefused) {
  SetPageOffsetBase(SyntheticKernel::kDirectMap + (1ull << 30));  // aligned, but unmapped
  auto hints = Find(Symbols());
  ASSERT_FALSE(hints.has_value());
  EXPECT_EQ(hints.error().code(), ErrorCode::kBadData);
  SetPageOffsetBase(SyntheticKernel::kDirectMap + 0x1000);  // not PUD-aligned
  EXPECT_FALSE(Find(Symbols()).has_value());
  SetPageOffsetBase(0x00007f0000000000ull);  // user half
  EXPECT_FALSE(Find(Symbols()).has_value());
}

TEST_F(SyntheticHintsTest, AnImageThatIsNotWherePhysBaseSaysIsRefused) {
  layout_.phys_base += 0x200000;
  auto hints = Find(Symbols());
  ASSERT_FALSE(hints.has_value());
  EXPECT_EQ(hints.error().code(), ErrorCode::kBadData);
}

TEST_F(SyntheticHintsTest, ImpossibleImageBoundsAreRefused) {
  SymbolTable huge({{kText, 'T', "_text", ""}, {kText + (2ull << 30), 'B', "_end", ""}});
  EXPECT_FALSE(Find(huge).has_value());
  SymbolTable backwards({{kText, 'T', "_text", ""}, {kText - 4096, 'B', "_end", ""}});
  EXPECT_FALSE(Find(backwards).has_value());
  SymbolTable none({{kText, 'T', "_stext", ""}});
  auto hints = Find(none);
  ASSERT_FALSE(hints.has_value());
  EXPECT_EQ(hints.error().code(), ErrorCode::kNotFound);
}

// The image's link-time address (for gdb) is _text less the slide; none without a slide, and
// none for a slide that would put it below __START_KERNEL_map (no kernel makes one).
TEST_F(SyntheticHintsTest, TheLinkTimeAddressIsTextLessTheSlide) {
  auto hints = Find(Symbols());
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_FALSE(hints->kernel_image->link_va.has_value());
  layout_.kaslr_offset = 0x800000;
  hints = Find(Symbols());
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_EQ(hints->kernel_image->link_va, kText - 0x800000);
  layout_.kaslr_offset = kText - kStartKernelMap + 0x200000;
  hints = Find(Symbols());
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_FALSE(hints->kernel_image->link_va.has_value());
  layout_.kaslr_offset = 0x800001;  // not page-aligned
  hints = Find(Symbols());
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  EXPECT_FALSE(hints->kernel_image->link_va.has_value());
}

// The real guests: the image is where their kallsyms says, and both mappings reach the bytes
// of their own linux_banner.
class RealHintsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RealHintsTest, MatchTheGuestsOwnAddresses) {
  std::string dir = testing::kGuestRoot + "/" + GetParam();
  std::string why;
  auto k = testing::OpenRealKernel(dir + "/raw.mem", &why);
  ASSERT_TRUE(k) << why;
  auto hints = k->os().CoreDump();
  ASSERT_TRUE(hints.has_value()) << hints.error().ToString();
  std::ifstream uname_in(dir + "/truth/uname.txt");
  std::string uname;
  std::getline(uname_in, uname);
  EXPECT_EQ(hints->note_text.rfind("OSRELEASE=" + uname + "\n", 0), 0u);
  uint64_t text = testing::ReadTruthSymbol(dir, "_text"), end = testing::ReadTruthSymbol(dir, "_end");
  ASSERT_TRUE(hints->kernel_image.has_value());
  EXPECT_EQ(hints->kernel_image->va, text);
  EXPECT_EQ(hints->kernel_image->length, (end - text + 4095) & ~4095ull);
  // Linked at _text less the guest's own KERNELOFFSET (the test guests boot with KASLR).
  auto kernel_offset = hints->note_text.find("\nKERNELOFFSET=");
  ASSERT_NE(kernel_offset, std::string::npos);
  uint64_t slide = std::stoull(hints->note_text.substr(kernel_offset + 14), nullptr, 16);
  ASSERT_NE(slide, 0u);
  EXPECT_EQ(hints->kernel_image->link_va, text - slide);

  std::ifstream banner_in(dir + "/truth/banner.txt");
  std::stringstream ss;
  ss << banner_in.rdbuf();
  std::string banner = ss.str();
  uint64_t at = testing::ReadTruthSymbol(dir, "linux_banner");
  uint64_t pa = hints->kernel_image->pa + (at - text);
  std::string got(banner.size(), '\0');
  ASSERT_TRUE(k->guest->ReadPhys(pa, std::as_writable_bytes(std::span(got))).ok());
  EXPECT_EQ(got, banner) << "the image's physical address";
  ASSERT_TRUE(k->mem->Read(*hints->direct_map_base + pa, std::as_writable_bytes(std::span(got)))
                  .ok());
  EXPECT_EQ(got, banner) << "the direct map";
}

INSTANTIATE_TEST_SUITE_P(Guests, RealHintsTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
