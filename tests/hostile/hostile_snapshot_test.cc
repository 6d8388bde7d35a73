// Hostile snapshots: copies of a real test guest's ELF core (l4) damaged before or while they
// are mounted. Whatever the damage, the daemon survives, every operation ends in bounded time,
// damaged objects give EIO or a message in `info`, and undamaged ones are still served exactly
// (compared with a mount of the undamaged core and with the guest's own ground truth).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>

#include "damage.h"
#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

constexpr char kGuest[] = "l4";
constexpr double kBoundSeconds = 30;  // TCG guests' snapshots, a loaded machine: generous

std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

// The kernel's own lines of a kallsyms text (modules' lines end in "\t[module]": their
// symbols need the types, which some damage takes away).
std::set<std::string> KernelSymbolLines(const std::string& text) {
  std::set<std::string> lines = Lines(text);
  std::erase_if(lines, [](const std::string& l) { return l.find("\t[") != std::string::npos; });
  return lines;
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) names.insert(e->d_name);
    closedir(d);
  }
  return names;
}

// [start, end) of the largest "ram-range: 0xA-0xB" (inclusive B) in an info text.
std::pair<uint64_t, uint64_t> LargestRamRange(const std::string& info) {
  std::pair<uint64_t, uint64_t> best{0, 0};
  std::istringstream in(info);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ram-range: ", 0) != 0) continue;
    size_t dash = line.find('-', 11);
    uint64_t start = std::stoull(line.substr(11, dash - 11), nullptr, 16);
    uint64_t end = std::stoull(line.substr(dash + 1), nullptr, 16) + 1;
    if (end - start > best.second - best.first) best = {start, end};
  }
  return best;
}

class HostileSnapshotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    clean_ = new Mount({std::string("g=") + GuestDir(kGuest) + "/core.elf"});
  }
  static void TearDownTestSuite() {
    delete clean_;
    clean_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(clean_->ok()) << clean_->error();
    copy_ = tmp_.path() + "/core.elf";
    ASSERT_TRUE(CopyCore(kGuest, copy_));
  }

  void MountCopy() {
    auto start = std::chrono::steady_clock::now();
    damaged_ = std::make_unique<Mount>(std::vector<std::string>{"g=" + copy_});
    EXPECT_LT(Since(start), kBoundSeconds) << "mounting took too long";
    ASSERT_TRUE(damaged_->ok()) << damaged_->error();
  }
  static double Since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // The daemon is alive and answers.
  void ExpectAlive() {
    EXPECT_EQ(kill(damaged_->pid(), 0), 0) << "the daemon died: " << damaged_->Stderr();
    EXPECT_TRUE(IsMountPoint(damaged_->path()));
    EXPECT_NE(ReadFile(*damaged_ / "g/info").find("name: g"), std::string::npos);
  }
  // Reads `rel` in both mounts, in bounded time; returns {clean, damaged}.
  std::pair<std::string, std::string> Both(const std::string& rel) {
    auto start = std::chrono::steady_clock::now();
    std::string damaged = ReadFile(*damaged_ / ("g/" + rel));
    EXPECT_LT(Since(start), kBoundSeconds) << rel;
    return {ReadFile(*clean_ / ("g/" + rel)), damaged};
  }
  std::string DamagedInfo() { return ReadFile(*damaged_ / "g/info"); }
  std::string Kmem(const Mount& m) const { return m / "g/kmem"; }

  // Process directories and comms are the clean mount's.
  void ExpectSameProcesses() {
    std::set<std::string> clean = List(*clean_ / "g/proc"), damaged = List(*damaged_ / "g/proc");
    EXPECT_GT(clean.size(), 300u);
    EXPECT_EQ(damaged, clean);
    for (const char* pid : {"1", "2"}) {
      auto [want, got] = Both(std::string("proc/") + pid + "/comm");
      EXPECT_FALSE(want.empty());
      EXPECT_EQ(got, want) << pid;
    }
  }
  // The banner, at linux_banner's address in kmem, is the guest's own.
  void ExpectBanner() {
    const std::string truth = ReadFile(GuestDir(kGuest) + "/truth/banner.txt");
    const uint64_t banner = TruthSymbol(kGuest, "linux_banner");
    ASSERT_NE(banner, 0u);
    EXPECT_EQ(PreadAt(Kmem(*damaged_), KmemOffset(kGuest, banner), truth.size()), truth);
  }
  // The address of init_task.tasks.next's target (the first task's `tasks` list_head), found
  // as the one list_head in init_task whose successor links back to it (not to itself).
  std::optional<uint64_t> FirstTaskListEntry(uint64_t init_task) {
    const std::string task = PreadAt(Kmem(*clean_), KmemOffset(kGuest, init_task), 8192);
    for (size_t off = 0; off + 8 <= task.size(); off += 8) {
      uint64_t next;
      std::memcpy(&next, task.data() + off, 8);
      if (next == init_task + off || next < (1ull << 63)) continue;
      std::string link = PreadAt(Kmem(*clean_), KmemOffset(kGuest, next), 16);
      uint64_t prev;
      if (link.size() != 16) continue;
      std::memcpy(&prev, link.data() + 8, 8);
      if (prev == init_task + off) return next;
    }
    return std::nullopt;
  }
  // The kernel's symbols are served exactly (whole-text comparison: no 4 MB diff on failure).
  void ExpectKernelSymbolsExact() {
    auto [clean, damaged] = Both("symbols/kallsyms");
    std::set<std::string> want = KernelSymbolLines(clean), got = KernelSymbolLines(damaged);
    EXPECT_GT(want.size(), 10000u);
    EXPECT_TRUE(got == want) << got.size() << " kernel symbols served, " << want.size()
                             << " in the undamaged snapshot";
  }
  // Overwrites `n` bytes of the kernel object at `va` in the copy with noise.
  void DamageKernel(uint64_t va, size_t n, uint32_t seed) {
    auto at = CoreOffsetOfKernelVa(kGuest, Kmem(*clean_), va);
    ASSERT_TRUE(at.has_value()) << "cannot place " << std::hex << va << " in the core";
    ASSERT_TRUE(Patch(copy_, *at, Noise(n, seed)));
  }

  static Mount* clean_;
  TempDir tmp_;
  std::string copy_;
  std::unique_ptr<Mount> damaged_;
};
Mount* HostileSnapshotTest::clean_ = nullptr;

// Another program cuts the snapshot short while it is mounted: what is gone is EIO in every
// file (never a daemon killed by SIGBUS, never a silent end of file), what is left is exact,
// and `info` says the file changed.
TEST_F(HostileSnapshotTest, ShrunkWhileMounted) {
  MountCopy();
  const std::string pmem = *damaged_ / "g/pmem";
  auto [start_pa, end_pa] = LargestRamRange(DamagedInfo());
  ASSERT_GT(end_pa - start_pa, 64u << 20) << DamagedInfo();
  const uint64_t high = end_pa - (1u << 20), low = start_pa + (1u << 20);
  const std::string low_clean = PreadAt(pmem, low, 65536);
  // Read once near the lost part (the mapping is in use), but not the bytes read below: those
  // the kernel would serve from its page cache, as the file was when they were read.
  ASSERT_EQ(PreadAt(pmem, high - (4u << 20), 65536).size(), 65536u);

  const uint64_t size = CoreBytes(kGuest).size();
  ASSERT_EQ(truncate(copy_.c_str(), static_cast<off_t>(size / 2 - 1000)), 0);  // not page-aligned

  int err = 0;
  auto start = std::chrono::steady_clock::now();
  std::string got = PreadAt(pmem, high, 65536, &err);
  EXPECT_LT(Since(start), kBoundSeconds);
  EXPECT_EQ(err, EIO) << "read " << got.size() << " bytes of lost RAM";
  EXPECT_EQ(PreadAt(pmem, low, 65536), low_clean);
  // kmem's banner is either still in the file (then exact) or lost (then EIO), nothing else.
  const std::string truth = ReadFile(GuestDir(kGuest) + "/truth/banner.txt");
  const uint64_t banner = TruthSymbol(kGuest, "linux_banner");
  err = 0;
  std::string b = PreadAt(Kmem(*damaged_), KmemOffset(kGuest, banner), truth.size(), &err);
  if (err == 0) EXPECT_EQ(b, truth);
  else EXPECT_EQ(err, EIO);
  // Every other file ends too, and the daemon is still there.
  (void)List(*damaged_ / "g/proc");
  (void)ReadFile(*damaged_ / "g/proc/1/maps");
  ExpectAlive();
  EXPECT_EQ(TrimNewline(InfoValue(DamagedInfo(), "file-changed")), "yes") << DamagedInfo();
  EXPECT_NE(InfoValue(DamagedInfo(), "file-lost"), "") << DamagedInfo();
}

// The kallsyms name table damaged from its start, or in its middle: the names that do not
// check out are left out (info says how many), none is served as garbage, and BTF and the
// task list are found without them.
class DamagedNamesTest : public HostileSnapshotTest,
                         public ::testing::WithParamInterface<uint64_t> {};

TEST_P(DamagedNamesTest, TypesAndProcessesSurviveAndNoGarbageNames) {
  auto names = VmcoreinfoSymbol(kGuest, "kallsyms_names");
  ASSERT_TRUE(names.has_value()) << "no SYMBOL(kallsyms_names) in the core's VMCOREINFO";
  DamageKernel(*names + GetParam(), 16384, 7);
  MountCopy();
  ExpectAlive();
  std::string info = DamagedInfo();
  std::string symbols = InfoValue(info, "symbols");
  std::string clean_symbols = InfoValue(ReadFile(*clean_ / "g/info"), "symbols");
  EXPECT_NE(symbols, clean_symbols) << "the damage went unnoticed:\n" << info;
  EXPECT_EQ(InfoValue(info, "types"), "BTF") << info;
  ExpectSameProcesses();
  ExpectBanner();
  // Whatever names are served are the kernel's own, at their own addresses.
  auto [clean_text, damaged_text] = Both("symbols/kallsyms");
  std::set<std::string> clean = Lines(clean_text);
  for (const std::string& line : Lines(damaged_text)) {
    EXPECT_TRUE(clean.count(line)) << "garbage symbol: " << line;
  }
}

INSTANTIATE_TEST_SUITE_P(Offsets, DamagedNamesTest, ::testing::Values(0u, 256u << 10),
                         [](const auto& info) { return "at" + std::to_string(info.param); });

// The BTF blob's header damaged: no types (info says why), but the symbols and physical and
// kernel memory are still served exactly.
TEST_F(HostileSnapshotTest, DamagedBtf) {
  const uint64_t btf = TruthSymbol(kGuest, "__start_BTF");
  ASSERT_NE(btf, 0u);
  DamageKernel(btf, 64, 11);
  MountCopy();
  ExpectAlive();
  std::string info = DamagedInfo();
  EXPECT_NE(InfoValue(info, "types"), "BTF") << info;
  EXPECT_NE(InfoValue(info, "types"), "") << info;
  EXPECT_EQ(InfoValue(info, "symbols"), InfoValue(ReadFile(*clean_ / "g/info"), "symbols"));
  ExpectKernelSymbolsExact();
  ExpectBanner();
  (void)List(*damaged_ / "g/proc");  // bounded, whatever it holds
  ExpectAlive();
}

// A cycle in the task list that does not pass its head: the first task's `tasks.next` points
// at itself. The walk must end (bounded), the daemon live on, the rest be served exactly.
TEST_F(HostileSnapshotTest, TaskListCycle) {
  const uint64_t init_task = TruthSymbol(kGuest, "init_task");
  ASSERT_NE(init_task, 0u);
  auto first = FirstTaskListEntry(init_task);
  ASSERT_TRUE(first.has_value()) << "init_task's task list not found";
  auto at = CoreOffsetOfKernelVa(kGuest, Kmem(*clean_), *first);
  ASSERT_TRUE(at.has_value());
  ASSERT_TRUE(Patch(copy_, *at, std::string(reinterpret_cast<const char*>(&*first), 8)));
  MountCopy();
  auto start = std::chrono::steady_clock::now();
  std::set<std::string> pids = List(*damaged_ / "g/proc");
  EXPECT_LT(Since(start), kBoundSeconds);
  EXPECT_LT(pids.size(), List(*clean_ / "g/proc").size()) << "the cycle went unnoticed";
  EXPECT_NE(InfoValue(DamagedInfo(), "processes"), "") << DamagedInfo();
  ExpectAlive();
  ExpectBanner();
  ExpectKernelSymbolsExact();
}

}  // namespace
}  // namespace vmemfs::testing
