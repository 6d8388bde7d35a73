// The Guest's freshness rule (freshness.h) over an in-memory source and a scripted OS finder:
// when the kernel is looked for, checked, dropped and found again, and when the generation
// moves.
#include "vmi/guest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "testing/memory_driver.h"
#include "vmi/os_registry.h"

namespace vmemfs::vmi {
namespace {

using ::vmemfs::testing::MemoryDriver;

// An OS whose StillRunning answer the test sets.
class ScriptedOs : public OperatingSystem {
 public:
  ScriptedOs(std::shared_ptr<std::atomic<bool>> running, int missing)
      : running_(running), missing_(missing) {}
  std::string_view name() const override { return "scripted"; }
  std::vector<Fact> Describe() override { return {{"os", "scripted"}}; }
  Result<std::vector<int32_t>> ProcessIds() override { return std::vector<int32_t>{1}; }
  Result<std::vector<int32_t>> ThreadIds(int32_t) override { return std::vector<int32_t>{1}; }
  Result<std::shared_ptr<vmi::Process>> Process(int32_t) override {
    return NotFoundError("none");
  }
  Result<std::string> ModulesText() override { return std::string(); }
  const SymbolTable& Symbols() const override { return symbols_; }
  Result<bool> StillRunning() override { return running_->load(); }
  int MissingParts() const override { return missing_; }

 private:
  std::shared_ptr<std::atomic<bool>> running_;
  const int missing_;
  SymbolTable symbols_;
};

// Finds a ScriptedOs while `present`, and counts its searches.
struct Script {
  std::atomic<bool> present{false};
  std::atomic<int> searches{0};
  std::atomic<int> missing{0};  // the parts the next OS found lacks
  std::shared_ptr<std::atomic<bool>> running = std::make_shared<std::atomic<bool>>(true);
};

class ScriptedFinder : public OsFinder {
 public:
  explicit ScriptedFinder(Script& script) : script_(script) {}
  std::string_view name() const override { return "scripted"; }
  Result<FoundOs> Find(const OsSearch&) const override {
    ++script_.searches;
    if (!script_.present) return NotFoundError("no kernel yet");
    script_.running->store(true);
    return FoundOs{std::make_shared<ScriptedOs>(script_.running, script_.missing.load()),
                   AddressSpace{PagingMode::kIa32e4, 0x1000}, "scripted"};
  }

 private:
  Script& script_;
};

std::unique_ptr<Guest> Open(Script& script, bool live) {
  MemoryDriver::Options o{.ranges = {{0, 1 << 20}}, .live = live};
  if (live) o.state = drivers::RunState::kRunning;
  std::vector<std::unique_ptr<OsFinder>> finders;
  finders.push_back(std::make_unique<ScriptedFinder>(script));
  auto guest = Guest::Open(std::make_unique<MemoryDriver>(o),
                           {.os_finders = std::make_shared<OsFinders>(std::move(finders))});
  EXPECT_TRUE(guest);
  return std::move(*guest);
}

std::string Value(const std::vector<Fact>& facts, const std::string& key) {
  for (const Fact& f : facts) {
    if (f.key == key) return f.value;
  }
  return "";
}

void Sleep(Freshness::Clock::duration d) { std::this_thread::sleep_for(d); }

TEST(GuestFreshnessTest, OpeningReadsNothingAndASnapshotIsSearchedOnce) {
  Script script;
  script.present = true;
  auto guest = Open(script, /*live=*/false);
  EXPECT_EQ(script.searches.load(), 0);  // mounting costs nothing
  auto view = guest->Kernel();
  ASSERT_TRUE(view->os);
  EXPECT_EQ(view->space, (AddressSpace{PagingMode::kIa32e4, 0x1000}));
  uint64_t generation = guest->generation();
  Sleep(Freshness::kKernelCheck + std::chrono::milliseconds(100));
  EXPECT_EQ(guest->Kernel(), view);
  EXPECT_EQ(script.searches.load(), 1);
  EXPECT_EQ(guest->generation(), generation);  // a snapshot never changes
}

TEST(GuestFreshnessTest, ALiveVmWithoutAKernelIsSearchedAgainWithABackoff) {
  Script script;
  auto guest = Open(script, /*live=*/true);
  auto none = guest->Kernel();
  EXPECT_FALSE(none->os);
  EXPECT_EQ(script.searches.load(), 1);
  EXPECT_EQ(Value(guest->Describe(), "os").rfind("none yet, looking again in ", 0), 0u);
  guest->Kernel();  // within the backoff: no new search
  EXPECT_EQ(script.searches.load(), 1);
  // The kernel comes up: found within the longest backoff.
  script.present = true;
  Sleep(Freshness::kMaxRetry + std::chrono::milliseconds(50));
  auto found = guest->Kernel();
  ASSERT_TRUE(found->os);
  EXPECT_NE(found->id, none->id);
  EXPECT_EQ(Value(guest->Describe(), "os"), "scripted");
}

TEST(GuestFreshnessTest, AKernelThatStopsIsDroppedAndTheNewOneFound) {
  Script script;
  script.present = true;
  auto guest = Open(script, /*live=*/true);
  auto first = guest->Kernel();
  ASSERT_TRUE(first->os);
  uint64_t generation = guest->generation();
  // Checked again only after a second.
  script.running->store(false);
  EXPECT_EQ(guest->Kernel(), first);
  Sleep(Freshness::kKernelCheck + std::chrono::milliseconds(50));
  auto second = guest->Kernel();  // dropped, searched again, found (a new kernel)
  ASSERT_TRUE(second->os);
  EXPECT_NE(second->os, first->os);
  EXPECT_NE(second->id, first->id);
  EXPECT_GT(guest->generation(), generation);
  EXPECT_EQ(script.searches.load(), 2);
}

TEST(GuestFreshnessTest, AKernelFoundWithPartsMissingIsReplacedByALookThatFindsMore) {
  Script script;
  script.present = true;
  script.missing = 2;
  auto guest = Open(script, /*live=*/true);
  auto first = guest->Kernel();
  ASSERT_TRUE(first->os);
  // At the next check, a look that finds no more keeps the view.
  Sleep(Freshness::kKernelCheck + std::chrono::milliseconds(50));
  EXPECT_EQ(guest->Kernel(), first);
  EXPECT_EQ(script.searches.load(), 2);
  // Checked again a second later, but looked at again only after kIncompleteRecheck.
  Sleep(Freshness::kKernelCheck + std::chrono::milliseconds(50));
  EXPECT_EQ(guest->Kernel(), first);
  EXPECT_EQ(script.searches.load(), 2);
  // The guest got further; the next look (a flush makes it due now) replaces the view.
  script.missing = 0;
  guest->Flush();
  auto second = guest->Kernel();
  ASSERT_TRUE(second->os);
  EXPECT_EQ(second->os->MissingParts(), 0);
  EXPECT_NE(second->id, first->id);
  EXPECT_EQ(script.searches.load(), 3);
}

TEST(GuestFreshnessTest, FlushChecksAtOnce) {
  Script script;
  script.present = true;
  auto guest = Open(script, /*live=*/true);
  auto first = guest->Kernel();
  script.running->store(false);
  script.present = false;
  guest->Flush();
  auto after = guest->Kernel();
  EXPECT_FALSE(after->os);  // the reset VM has no kernel yet
  EXPECT_NE(after->id, first->id);
}

TEST(GuestFreshnessTest, TheGenerationMovesWithAgeOnlyWhileTheVmMayRun) {
  Script script;
  auto guest = Open(script, /*live=*/true);
  uint64_t g0 = guest->generation();
  Sleep(Freshness::kLiveAge + std::chrono::milliseconds(50));
  uint64_t g1 = guest->generation();
  EXPECT_GT(g1, g0);
  ASSERT_TRUE(guest->Pause().ok());
  uint64_t paused = guest->generation();
  Sleep(Freshness::kLiveAge + std::chrono::milliseconds(50));
  EXPECT_EQ(guest->generation(), paused);  // nothing changes while vmemfs holds it paused
  ASSERT_TRUE(guest->Resume().ok());
  EXPECT_GT(guest->generation(), paused);  // a resume may change anything
}

}  // namespace
}  // namespace vmemfs::vmi
