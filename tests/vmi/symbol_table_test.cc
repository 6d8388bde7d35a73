#include "vmi/symbol_table.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace vmemfs::vmi {
namespace {

SymbolTable Sample() {
  return SymbolTable({
      {0x0, 'A', "fixed_percpu_data", ""},
      {0xffffffff81000000, 'T', "_stext", ""},
      {0xffffffff81000000, 'T', "_text", ""},  // alias: same address
      {0xffffffff81000010, 't', "helper", ""},
      {0xffffffff81000040, 't', "helper", ""},    // a second static of that name
      {0xffffffff81000030, 'T', "unsorted", ""},  // tables need not be sorted
      {0xffffffff90000000, 'B', "_end", ""},      // far: size capped
      {0xffffffffc0000000, 't', "mod_fn", "ext4"},
      {0xffffffffc0000100, 'T', "", ""},  // nameless: not printed
  });
}

TEST(SymbolTableTest, KallsymsTextIsExactlyTheKernelsFormat) {
  EXPECT_EQ(Sample().KallsymsText(),
            "0000000000000000 A fixed_percpu_data\n"
            "ffffffff81000000 T _stext\n"
            "ffffffff81000000 T _text\n"
            "ffffffff81000010 t helper\n"
            "ffffffff81000040 t helper\n"
            "ffffffff81000030 T unsorted\n"
            "ffffffff90000000 B _end\n"
            "ffffffffc0000000 t mod_fn\t[ext4]\n");
}

TEST(SymbolTableTest, GarbageTypeByteDoesNotCutTheLine) {
  SymbolTable t({{0x10, '\0', "x", ""}});
  EXPECT_EQ(t.KallsymsText(), std::string("0000000000000010 \0 x\n", 21));
}

TEST(SymbolTableTest, LookupFirstInKallsymsOrderAndAll) {
  SymbolTable t = Sample();
  const Symbol* h = t.Lookup("helper");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->address, 0xffffffff81000010u);
  auto all = t.LookupAll("helper");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1]->address, 0xffffffff81000040u);
  EXPECT_EQ(t.Lookup("nope"), nullptr);
  EXPECT_TRUE(t.LookupAll("nope").empty());
  EXPECT_EQ(t.Lookup("helpe"), nullptr);
}

TEST(SymbolTableTest, ByAddressIsStableAndSizesReachTheNextHigherAddress) {
  SymbolTable t = Sample();
  auto order = t.by_address();
  ASSERT_EQ(order.size(), t.size());
  for (size_t k = 1; k < order.size(); ++k) {
    EXPECT_LE(t[order[k - 1]].address, t[order[k]].address);
  }
  EXPECT_EQ(t[order[1]].name, "_stext");  // equal addresses keep kallsyms order
  EXPECT_EQ(t[order[2]].name, "_text");
  EXPECT_EQ(t.SizeOf(1), 0x10u);  // _stext: to helper, not to its alias
  EXPECT_EQ(t.SizeOf(2), 0x10u);
  EXPECT_EQ(t.SizeOf(3), 0x20u);                        // helper -> unsorted
  EXPECT_EQ(t.SizeOf(5), 0x10u);                        // unsorted -> second helper
  EXPECT_EQ(t.SizeOf(4), SymbolTable::kMaxSymbolSize);  // -> _end, far away
  EXPECT_EQ(t.SizeOf(8), 0u);                           // highest address
}

TEST(SymbolTableTest, Containing) {
  SymbolTable t = Sample();
  EXPECT_EQ(t.Containing(0xffffffff81000005)->name, "_text");
  EXPECT_EQ(t.Containing(0xffffffff81000010)->name, "helper");
  EXPECT_EQ(t.Containing(0xffffffff8100003f)->name, "unsorted");
  SymbolTable high({{0x1000, 'T', "a", ""}});
  EXPECT_EQ(high.Containing(0xfff), nullptr);
}

TEST(SymbolTableTest, EmptyTable) {
  SymbolTable t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.KallsymsText(), "");
  EXPECT_EQ(t.Lookup("x"), nullptr);
  EXPECT_EQ(t.Containing(0), nullptr);
}

TEST(SymbolTableTest, SurvivesMoves) {
  SymbolTable a = Sample();
  SymbolTable b = std::move(a);
  SymbolTable c;
  c = std::move(b);
  ASSERT_NE(c.Lookup("fixed_percpu_data"), nullptr);  // names are short: in-object storage
  EXPECT_EQ(c.Lookup("fixed_percpu_data")->address, 0u);
}

TEST(SymbolTableTest, ConcurrentReaders) {
  std::vector<Symbol> symbols;
  for (int i = 0; i < 10000; ++i) {
    symbols.push_back({0xffffffff81000000ull + 16 * i, 'T', "sym" + std::to_string(i), ""});
  }
  const SymbolTable t(std::move(symbols));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        const Symbol* s = t.Lookup("sym" + std::to_string(i));
        if (s == nullptr || t.Containing(s->address + 3) != s) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace vmemfs::vmi
