// The 32-bit module inference on a hand-made kernel: 2-level page tables mapping lowmem at
// 0xc0000000, a `modules` head in "image data" and three struct modules laid out as Debian's
// 6.1 686 kernels lay them out (the inference is not told the offsets), one using another,
// one exporting a symbol, one permanent and tainted.
#include "vmi/linux/module_layout_infer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "testing/memory_driver.h"
#include "vmi/guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::MemoryDriver;

constexpr uint64_t kPageOffset = 0xc0000000;
constexpr uint64_t kPgd = 0x1000;        // physical
constexpr uint64_t kStext = 0x100000;    // physical: the image's text...
constexpr uint64_t kEtext = 0x200000;    // ...its data after _etext
constexpr uint64_t kDataBytes = 0x200000;
constexpr uint64_t kHead = 0x300040;     // the `modules` list_head
constexpr uint64_t kDecoy = 0x300080;    // a list_head of other objects
constexpr uint64_t kCores = 0x1000000;   // module i's core at kCores + i * 0x10000
constexpr uint64_t kUse = 0x800000;      // the module_use (beta uses alpha)
constexpr uint64_t kCoreSize = 0x4000, kTextSize = 0x1000, kStructAt = 0x2000;

// The offsets of the fake struct module (6.1, 686-pae).
constexpr uint64_t kSyms = 0x8c, kNumSyms = 0x94, kInit = 0xcc, kCore = 0x100,
                   kInitLayout = 0x130, kTaints = 0x160, kKallsyms = 0x174,
                   kSourceList = 0x1fc, kExit = 0x20c, kRefcnt = 0x210;

uint32_t Va(uint64_t pa) { return static_cast<uint32_t>(pa + kPageOffset); }

class Fake {
 public:
  // Module 0 "alpha", 1 "beta" (uses alpha), 2 "gamma" (permanent, taint O).
  Fake() {
    auto d = std::make_unique<MemoryDriver>(32 << 20);
    d_ = d.get();
    for (uint32_t i = 0; i < 8; ++i) d_->Put32(kPgd + ((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);
    const char* names[3] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; ++i) PutModule(i, names[i]);
    // Ring, newest first: head -> beta -> alpha -> gamma -> head.
    const uint64_t ring[5] = {kHead, Mod(1) + 4, Mod(0) + 4, Mod(2) + 4, kHead};
    for (int i = 0; i < 4; ++i) Link(ring[i], ring[i + 1]);
    // beta uses alpha: module_use {source_list, target_list, source, target}.
    Link(Mod(0) + kSourceList, kUse);
    Link(kUse, Mod(0) + kSourceList);
    Link(Mod(1) + kSourceList + 8, kUse + 8);
    Link(kUse + 8, Mod(1) + kSourceList + 8);
    d_->Put32(kUse + 16, Va(Mod(1)));
    d_->Put32(kUse + 20, Va(Mod(0)));
    d_->Put32(Mod(0) + kRefcnt, 2);
    // A decoy: a consistent ring of one object with a name but an impossible state.
    Link(kDecoy, 0x900004);
    Link(0x900004, kDecoy);
    d_->Put32(0x900000, 7);
    d_->Put(0x90000c, "decoy", 6);
    guest_ = std::move(*Guest::Open(std::move(d)));
    mem_ = std::make_unique<KernelMemory>(*guest_, AddressSpace{PagingMode::kLegacy32, kPgd}, 4);
  }
  static uint64_t Core(int i) { return kCores + i * 0x10000; }
  static uint64_t Mod(int i) { return Core(i) + kStructAt; }
  MemoryDriver& driver() { return *d_; }
  KernelMemory& mem() { return *mem_; }
  static ModuleInferInput Input() {
    return {Va(kEtext), kDataBytes, Va(kStext), kPageOffset};
  }

 private:
  // node.next = to, to.prev = node.
  void Link(uint64_t node, uint64_t to) {
    d_->Put32(node, Va(to));
    d_->Put32(to + 4, Va(node));
  }
  void PutModule(int i, const char* name) {
    const uint64_t core = Core(i), m = Mod(i);
    d_->Put(m + 12, name, std::strlen(name) + 1);
    d_->Put32(m + kCore, Va(core));
    d_->Put32(m + kCore + 4, kCoreSize);
    d_->Put32(m + kCore + 8, kTextSize);
    d_->Put32(m + kCore + 12, 0x2000);
    d_->Put32(m + kCore + 16, 0x2000);
    d_->Put32(m + kCore + 20, Va(m));        // core_layout.mtn.mod
    d_->Put32(m + kInitLayout + 20, Va(m));  // init_layout.mtn.mod
    d_->Put32(m + kInit, Va(core + 0x20000));  // freed init text
    d_->Put32(m + kExit, i == 2 ? 0 : Va(core + 0x80));
    if (i == 2) d_->Put32(m + kTaints, 1 << 12);
    d_->Put32(m + kRefcnt, 1);
    for (uint64_t list : {kSourceList, kSourceList + 8}) {  // empty unless linked later
      d_->Put32(m + list, Va(m + list));
      d_->Put32(m + list + 4, Va(m + list));
    }
    // An empty mutex wait_list before the real lists, as in 6.1 (param_lock).
    d_->Put32(m + 0xa4, Va(m + 0xa4));
    d_->Put32(m + 0xa8, Va(m + 0xa4));
    // core_kallsyms: null symbol, "<name>_fn" at core + 0x10, "<name>_data" at core + 0x40.
    const uint64_t symtab = core + 0x3000, strtab = core + 0x3100, typetab = core + 0x3200;
    const std::string fn = std::string(name) + "_fn", data = std::string(name) + "_data";
    std::string strings = std::string(1, '\0') + fn + '\0' + data + '\0';
    d_->Put(strtab, strings.data(), strings.size());
    const uint32_t syms[12] = {0, 0, 0, 0,
                               1, Va(core + 0x10), 0x20, 0x12,
                               static_cast<uint32_t>(2 + fn.size()), Va(core + 0x40), 4, 0x11};
    d_->Put(symtab, syms, sizeof syms);
    d_->Put(typetab, "Utd", 3);
    d_->Put32(m + kKallsyms, Va(m + kKallsyms + 4));
    const uint32_t ks[4] = {Va(symtab), 3, Va(strtab), Va(typetab)};
    d_->Put(m + kKallsyms + 4, ks, sizeof ks);
    if (i == 0) {  // alpha exports alpha_fn: one PREL32 kernel_symbol
      const uint64_t entry = core + 0x3300;
      const int32_t sym[3] = {0x10 - 0x3300, static_cast<int32_t>(0x3101 - 0x3304), 0};
      d_->Put(entry, sym, sizeof sym);
      d_->Put32(m + kSyms, Va(entry));
      d_->Put32(m + kSyms + 4, Va(core + 0x3400));  // crcs
      d_->Put32(m + kNumSyms, 1);
    }
  }
  MemoryDriver* d_;
  std::unique_ptr<Guest> guest_;
  std::unique_ptr<KernelMemory> mem_;
};

TEST(ModuleLayoutInferTest, FindsTheHeadAndEveryOffset) {
  Fake f;
  auto got = InferModuleLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->head, Va(kHead));
  EXPECT_EQ(got->modules, 3u);
  const ModuleLayout& l = got->layout;
  EXPECT_EQ(l.list, 4u);
  EXPECT_EQ(l.name, 12u);
  EXPECT_EQ(l.name_size, 60u);
  EXPECT_EQ(l.base, kCore);
  ASSERT_EQ(l.num_size_parts, 2u);
  EXPECT_EQ(l.size_parts[0].offset, kCore + 4);
  EXPECT_EQ(l.size_parts[1].offset, kInitLayout + 4);
  EXPECT_EQ(l.taints.offset, kTaints);
  EXPECT_EQ(l.kallsyms, kKallsyms);
  EXPECT_TRUE(l.has_exports);
  EXPECT_EQ(l.syms, kSyms);
  EXPECT_EQ(l.num_syms.offset, kNumSyms);
  EXPECT_EQ(l.source_list, kSourceList);
  EXPECT_EQ(l.exit, kExit);
  EXPECT_EQ(l.refcnt.offset, kRefcnt);
  EXPECT_TRUE(l.has_init);
  EXPECT_EQ(l.init, kInit);
  EXPECT_EQ(got->how.size(), 2u);
}

TEST(ModuleLayoutInferTest, TheInferredLayoutReadsModulesAndSymbols) {
  Fake f;
  auto got = InferModuleLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  ModuleWalkReport report;
  auto modules = ListModules(f.mem(), got->layout, got->head, {}, &report);
  ASSERT_TRUE(modules.has_value()) << modules.error().ToString();
  EXPECT_TRUE(report.stopped.ok()) << report.stopped.ToString();
  EXPECT_EQ(ModulesText(*modules, 4),
            "beta 16384 0 - Live 0xc1010000\n"
            "alpha 16384 1 beta, Live 0xc1000000\n"
            "gamma 16384 0 [permanent], Live 0xc1020000 (O)\n");
  auto syms = ModuleSymbols(f.mem(), got->layout, (*modules)[1]);
  ASSERT_TRUE(syms.has_value()) << syms.error().ToString();
  ASSERT_EQ(syms->size(), 2u);
  EXPECT_EQ((*syms)[0].name, "alpha_fn");
  EXPECT_EQ((*syms)[0].address, Va(Fake::Core(0) + 0x10));
  EXPECT_EQ((*syms)[0].type, 'T');  // exported
  EXPECT_EQ((*syms)[1].name, "alpha_data");
  EXPECT_EQ((*syms)[1].type, 'd');
  EXPECT_EQ((*syms)[1].module, "alpha");
}

TEST(ModuleLayoutInferTest, NoModuleRingIsNotFound) {
  Fake f;
  f.driver().Put32(kHead, Va(kHead));  // an empty list: nothing loaded
  f.driver().Put32(kHead + 4, Va(kHead));
  auto got = InferModuleLayout32(f.mem(), Fake::Input());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

TEST(ModuleLayoutInferTest, AModuleOutsideItsCoreIsNotTrusted) {
  Fake f;
  f.driver().Put32(Fake::Mod(2) + kCore + 4, 0x1000);  // gamma's core ends before its struct
  auto got = InferModuleLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(!got.has_value() || got->layout.base != kCore);
}

TEST(ModuleLayoutInferTest, AUseNamingAnUnlistedModuleIsNotTrusted) {
  Fake f;
  f.driver().Put32(kUse + 16, 0xc5000000);  // source: no module on the list
  auto got = InferModuleLayout32(f.mem(), Fake::Input());
  ASSERT_TRUE(!got.has_value() || got->layout.source_list != kSourceList);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
