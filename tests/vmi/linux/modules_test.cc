#include "vmi/linux/modules.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tasks_test_guest.h"
#include "vmi/linux/kallsyms.h"

namespace vmemfs::vmi::linux_os {
namespace {

using testing::SyntheticKernel;

// A compact, made-up struct module: the walker must only use the layout's numbers.
ModuleLayout SyntheticLayout() {
  ModuleLayout l;
  l.state = {0x0, 4};
  l.list = 0x8;
  l.name = 0x18;
  l.name_size = 56;
  l.size_parts[0] = {0x50, 4};  // "core"
  l.size_parts[1] = {0x54, 4};  // "init"
  l.num_size_parts = 2;
  l.base = 0x58;
  l.refcnt = {0x60, 4};
  l.source_list = 0x68;
  l.init = 0x78;
  l.exit = 0x80;
  l.taints = {0x88, 8};
  l.kallsyms = 0x90;
  l.syms = 0x98;
  l.num_syms = {0xa0, 4};
  l.use_source_list = 0x0;
  l.use_source = 0x20;
  l.kallsyms_symtab = 0x0;
  l.kallsyms_num_symtab = {0x8, 4};
  l.kallsyms_strtab = 0x10;
  l.kallsyms_typetab = 0x18;
  return l;
}

// Objects live at PA 0x10000 + 0x1000 * slot (one page each), seen through the direct map.
class SyntheticModulesTest : public ::testing::Test {
 protected:
  static uint64_t Slot(int n) { return SyntheticKernel::Kva(0x10000 + 0x1000 * uint64_t(n)); }
  static constexpr int kHead = 0;

  uint64_t MakeModule(int slot, const std::string& name, uint32_t core, uint32_t init,
                      uint32_t refcnt, uint32_t state = 0) {
    uint64_t m = Slot(slot);
    k_.K32(m + l_.state.offset, state);
    k_.Put(m + l_.name - SyntheticKernel::kDirectMap, name.c_str(), name.size() + 1);
    k_.K32(m + 0x50, core);
    k_.K32(m + 0x54, init);
    k_.K64(m + l_.base, 0xffffffffc0000000 + slot * 0x10000);
    k_.K32(m + l_.refcnt.offset, refcnt);
    k_.Ring({m + l_.source_list});  // no users
    return m;
  }
  // Module `user` uses `used` (a module_use in slot use_slot).
  void Use(uint64_t used, uint64_t user, int use_slot) {
    uint64_t use = Slot(use_slot);
    k_.K64(use + l_.use_source, user);
    k_.Ring({used + l_.source_list, use + l_.use_source_list});
  }

  SyntheticKernel k_;
  ModuleLayout l_ = SyntheticLayout();
};

TEST_F(SyntheticModulesTest, ListsModulesAsProcModules) {
  uint64_t a = MakeModule(1, "alpha", 0x3000, 0, 2);
  uint64_t b = MakeModule(2, "bravo", 0x1000, 0x1000, 1);
  uint64_t c = MakeModule(3, "charlie", 0x2000, 0, 1, 1);
  k_.K64(c + l_.init, 0xffffffff81000000);  // init without exit: permanent
  Use(a, b, 10);
  k_.K64(a + l_.taints.offset, (1 << 12) | (1 << 13));
  k_.Ring({Slot(kHead), a + l_.list, b + l_.list, c + l_.list});
  ModuleWalkReport report;
  auto mods = ListModules(k_.mem(), l_, Slot(kHead), {}, &report);
  ASSERT_TRUE(mods.has_value()) << mods.error().ToString();
  EXPECT_TRUE(report.errors.empty());
  ASSERT_EQ(mods->size(), 3u);
  EXPECT_EQ((*mods)[0].used_by, std::vector<std::string>{"bravo"});
  EXPECT_EQ(ModulesText(*mods),
            "alpha 12288 1 bravo, Live 0xffffffffc0010000 (OE)\n"
            "bravo 8192 0 - Live 0xffffffffc0020000\n"
            "charlie 8192 0 [permanent], Loading 0xffffffffc0030000\n");
}

TEST_F(SyntheticModulesTest, UnformedModulesAreSkipped) {
  uint64_t a = MakeModule(1, "alpha", 0x1000, 0, 1, 3);
  k_.Ring({Slot(kHead), a + l_.list});
  auto mods = ListModules(k_.mem(), l_, Slot(kHead));
  ASSERT_TRUE(mods.has_value());
  EXPECT_EQ(ModulesText(*mods), "");
  auto syms = ModuleSymbols(k_.mem(), l_, (*mods)[0]);
  ASSERT_TRUE(syms.has_value());
  EXPECT_TRUE(syms->empty());
}

TEST_F(SyntheticModulesTest, CycleThatAvoidsTheHeadEnds) {
  uint64_t a = MakeModule(1, "a", 1, 0, 1), b = MakeModule(2, "b", 1, 0, 1);
  uint64_t c = MakeModule(3, "c", 1, 0, 1);
  k_.Ring({Slot(kHead), a + l_.list, b + l_.list, c + l_.list});
  k_.K64(c + l_.list, b + l_.list);      // c -> b, and b's prev is a: caught by next->prev ...
  k_.K64(b + l_.list + 8, c + l_.list);  // ... unless the back link agrees: a cycle b <-> c
  ModuleWalkReport report;
  auto mods = ListModules(k_.mem(), l_, Slot(kHead), {}, &report);
  ASSERT_TRUE(mods.has_value());
  EXPECT_LE(mods->size(), 3u);
  EXPECT_FALSE(report.stopped.ok());
}

TEST_F(SyntheticModulesTest, CapsStopLongListsAndUserLists) {
  std::vector<uint64_t> ring = {Slot(kHead)};
  for (int i = 1; i <= 20; ++i)
    ring.push_back(MakeModule(i, "m" + std::to_string(i), 1, 0, 1) + l_.list);
  k_.Ring(ring);
  ModuleWalkReport report;
  auto mods = ListModules(k_.mem(), l_, Slot(kHead), {.max_modules = 5}, &report);
  ASSERT_TRUE(mods.has_value());
  EXPECT_EQ(mods->size(), 5u);
  EXPECT_TRUE(report.truncated);
}

TEST_F(SyntheticModulesTest, GarbagePointersEndTheWalkWithPartialResults) {
  uint64_t a = MakeModule(1, "alpha", 1, 0, 1);
  k_.Ring({Slot(kHead), a + l_.list});
  k_.K64(a + l_.list, 0xdead000000000000);  // next points nowhere
  ModuleWalkReport report;
  auto mods = ListModules(k_.mem(), l_, Slot(kHead), {}, &report);
  ASSERT_TRUE(mods.has_value());
  EXPECT_EQ(mods->size(), 1u);
  EXPECT_NE(report.stopped.message().find("at module"), std::string::npos)
      << report.stopped.ToString();
  EXPECT_FALSE(ListModules(k_.mem(), l_, 0xffff900000000000).has_value());  // unmapped head
}

TEST_F(SyntheticModulesTest, SymbolsWithTypesAndExports) {
  uint64_t a = MakeModule(1, "alpha", 1, 0, 1);
  k_.Ring({Slot(kHead), a + l_.list});
  uint64_t ks = Slot(4), symtab = Slot(5), strtab = Slot(6), typetab = Slot(7);
  k_.K64(a + l_.kallsyms, ks);
  k_.K64(ks + l_.kallsyms_symtab, symtab);
  k_.K32(ks + l_.kallsyms_num_symtab.offset, 3);
  k_.K64(ks + l_.kallsyms_strtab, strtab);
  k_.K64(ks + l_.kallsyms_typetab, typetab);
  k_.Put(strtab - SyntheticKernel::kDirectMap, "\0foo\0bar\0", 9);
  k_.Put(typetab - SyntheticKernel::kDirectMap, "aTT", 3);
  // Near the export table: kernel_symbol holds 32-bit offsets.
  uint64_t values[] = {0, Slot(9), Slot(9) + 0x20};
  uint32_t names[] = {0, 1, 5};
  for (int i = 0; i < 3; ++i) {
    k_.K32(symtab + i * 24, names[i]);
    k_.K64(symtab + i * 24 + 8, values[i]);
  }
  // Exports: "bar" (prel32 offsets relative to the fields themselves).
  uint64_t exports = Slot(8);
  k_.K64(a + l_.syms, exports);
  k_.K32(a + l_.num_syms.offset, 1);
  k_.K32(exports, static_cast<uint32_t>(values[2] - exports));
  k_.K32(exports + 4, static_cast<uint32_t>(strtab + 5 - (exports + 4)));
  auto mods = ListModules(k_.mem(), l_, Slot(kHead));
  ASSERT_TRUE(mods.has_value());
  auto syms = ModuleSymbols(k_.mem(), l_, (*mods)[0]);
  ASSERT_TRUE(syms.has_value()) << syms.error().ToString();
  ASSERT_EQ(syms->size(), 2u);  // the nameless ELF null symbol is dropped
  EXPECT_EQ((*syms)[0], (Symbol{values[1], 't', "foo", "alpha"}));  // not exported: local
  EXPECT_EQ((*syms)[1], (Symbol{values[2], 'T', "bar", "alpha"}));
  // A garbage count is refused rather than allocated.
  k_.K32(ks + l_.kallsyms_num_symtab.offset, 0xffffffff);
  EXPECT_FALSE(ModuleSymbols(k_.mem(), l_, (*mods)[0]).has_value());
}

// --- Real guests ---

// truth/modules.txt, or the modules section of truth.log when guest.py did not split it out.
std::string TruthModules(const std::string& dir) {
  std::ifstream in(dir + "/truth/modules.txt");
  std::stringstream text;
  if (in) {
    text << in.rdbuf();
    return text.str();
  }
  std::ifstream log(dir + "/truth.log");
  text << log.rdbuf();
  std::string all = text.str();
  size_t begin = all.find("==VMEMFS-BEGIN modules==\n");
  size_t end = all.find("==VMEMFS-END modules==");
  if (begin == std::string::npos || end == std::string::npos) return "";
  begin += 25;
  return all.substr(begin, end - begin);
}

// The module lines of truth/kallsyms.txt, in order.
std::vector<std::string> TruthModuleSymbols(const std::string& dir) {
  std::ifstream in(dir + "/truth/kallsyms.txt");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\t[") != std::string::npos) out.push_back(line + "\n");
  }
  return out;
}

class RealModulesTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::string why;
    g_ = testing::OpenRealGuest(GetParam(), &why);
    if (g_ == nullptr) GTEST_SKIP() << why;
    if (TruthModules(g_->dir).empty()) GTEST_SKIP() << "guest loaded no modules (old image)";
    auto layout = ResolveModuleLayout(*g_->types);
    ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
    layout_ = *layout;
    head_ = testing::ReadTruthSymbol(g_->dir, "modules");
    ASSERT_NE(head_, 0u);
  }
  testing::RealGuest* g_ = nullptr;
  ModuleLayout layout_;
  uint64_t head_ = 0;
};

TEST_P(RealModulesTest, ProcModulesMatchesTruth) {
  ModuleWalkReport report;
  auto mods = ListModules(*g_->mem, layout_, head_, {}, &report);
  ASSERT_TRUE(mods.has_value()) << mods.error().ToString();
  EXPECT_TRUE(report.errors.empty()) << report.errors.front().ToString();
  EXPECT_EQ(ModulesText(*mods), TruthModules(g_->dir));
}

TEST_P(RealModulesTest, SymbolsMatchTruthKallsyms) {
  auto mods = ListModules(*g_->mem, layout_, head_);
  ASSERT_TRUE(mods.has_value());
  std::vector<Symbol> all;
  for (const Module& m : *mods) {
    auto syms = ModuleSymbols(*g_->mem, layout_, m);
    ASSERT_TRUE(syms.has_value()) << m.name << ": " << syms.error().ToString();
    all.insert(all.end(), syms->begin(), syms->end());
  }
  std::string text = SymbolTable(std::move(all)).KallsymsText();
  std::vector<std::string> lines;
  for (size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    lines.push_back(text.substr(pos, nl + 1 - pos));
  }
  EXPECT_EQ(lines, TruthModuleSymbols(g_->dir));
}

INSTANTIATE_TEST_SUITE_P(Guests, RealModulesTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
