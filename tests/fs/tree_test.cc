#include "fs/tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

std::unique_ptr<File> Text(std::string text) {
  return MakeTextFile(nullptr, [text] { return Result<std::string>(text); });
}

// Lists the names it is given with their identities; makes a text file per name and counts
// the makes. `generation` stands for the guest's freshness generation.
class FakeProvider : public DirectoryProvider {
 public:
  explicit FakeProvider(std::map<std::string, uint64_t>* names) : names_(names) {}
  Result<std::vector<std::string>> Names() override {
    std::vector<std::string> out;
    for (const auto& [name, id] : *names_) out.push_back(name);
    return out;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    auto it = names_->find(std::string(name));
    if (it == names_->end()) return std::optional<Entry>();
    ++makes;
    return Entry::OfFile(Text(std::string(name)), it->second);
  }
  uint64_t generation() override { return gen.load(); }
  std::atomic<int> makes{0};
  std::atomic<uint64_t> gen{0};

 private:
  std::map<std::string, uint64_t>* names_;
};

std::vector<std::string> Names(const std::vector<DirEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.name);
  return out;
}

TEST(TreeTest, FixedChildrenAndBadNames) {
  Tree tree;
  auto dir = tree.AddDirectory(kRootIno, "vm");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(tree.AddFile(*dir, "info", Text("x")));
  EXPECT_FALSE(tree.AddFile(*dir, "info", Text("y")));  // duplicate
  EXPECT_FALSE(tree.AddDirectory(*dir, "a/b"));
  EXPECT_FALSE(tree.AddDirectory(*dir, ".."));
  auto info = tree.Lookup(*dir, "info");
  ASSERT_TRUE(info);
  EXPECT_FALSE((*info)->is_dir());
  EXPECT_FALSE(tree.AddFile((*info)->ino, "child", Text("z")));  // parent is a file
  EXPECT_EQ(tree.Lookup(*dir, "nothing").error().code(), ErrorCode::kNotFound);
  // Fixed nodes stay when the kernel forgets them.
  Ino ino = (*info)->ino;
  tree.Forget(ino, 1);
  EXPECT_NE(tree.Get(ino), nullptr);
  EXPECT_EQ(tree.Lookup(*dir, "info").value()->ino, ino);
}

TEST(TreeTest, ProviderEntriesAreMadeOnceAndListedWhileTheProviderListsThem) {
  std::map<std::string, uint64_t> names = {{"1", 1}, {"2", 2}};
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto proc = tree.AddDirectory(kRootIno, "proc", std::move(provider));
  ASSERT_TRUE(proc);
  auto one = tree.Lookup(*proc, "1");
  ASSERT_TRUE(one);
  Ino one_ino = (*one)->ino;
  EXPECT_EQ(tree.Lookup(*proc, "1").value()->ino, one_ino);
  EXPECT_EQ(p->makes.load(), 1);
  EXPECT_EQ(Names(*tree.List(*proc)), (std::vector<std::string>{"1", "2"}));
  names = {{"2", 2}, {"3", 3}};  // process 1 exits, 3 starts
  EXPECT_EQ(Names(*tree.List(*proc)), (std::vector<std::string>{"2", "3"}));
  EXPECT_FALSE(tree.Lookup(*proc, "1"));  // cut by the listing, and no longer made
  EXPECT_NE(tree.Get(one_ino), nullptr);  // the kernel still holds it
  tree.Forget(one_ino, 2);
  EXPECT_EQ(tree.Get(one_ino), nullptr);  // now it is freed
  EXPECT_FALSE(tree.Lookup(*proc, "4"));
}

TEST(TreeTest, ForgottenComputedEntriesAreFreedAndMadeAgainWithANewInode) {
  std::map<std::string, uint64_t> names = {{"vm", 7}};
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto root = tree.AddDirectory(kRootIno, "domains", std::move(provider));
  size_t before = tree.size();
  Ino first = tree.Lookup(*root, "vm").value()->ino;
  EXPECT_EQ(tree.size(), before + 1);
  tree.Forget(first, 1);
  EXPECT_EQ(tree.Get(first), nullptr);
  EXPECT_EQ(tree.size(), before);
  Ino second = tree.Lookup(*root, "vm").value()->ino;
  EXPECT_NE(first, second);
  EXPECT_EQ(p->makes.load(), 2);
}

TEST(TreeTest, ANewGenerationConfirmsOrReplacesEntriesByIdentity) {
  std::map<std::string, uint64_t> names = {{"100", 1}, {"200", 2}};
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto proc = tree.AddDirectory(kRootIno, "proc", std::move(provider));
  Ino a = tree.Lookup(*proc, "100").value()->ino;
  Ino b = tree.Lookup(*proc, "200").value()->ino;
  // Same generation: no new make.
  ASSERT_TRUE(tree.Lookup(*proc, "100"));
  EXPECT_EQ(p->makes.load(), 2);
  // The guest moved on: pid 100 is the same task, pid 200 was reused by another one.
  names["200"] = 99;
  p->gen = 1;
  EXPECT_EQ(tree.Lookup(*proc, "100").value()->ino, a);
  Ino b2 = tree.Lookup(*proc, "200").value()->ino;
  EXPECT_NE(b2, b);
  EXPECT_NE(tree.Get(b), nullptr);  // the old one lives while the kernel holds it
  tree.Forget(b, 1);
  EXPECT_EQ(tree.Get(b), nullptr);
  // Another generation: 100 exited.
  names.erase("100");
  p->gen = 2;
  EXPECT_EQ(tree.Lookup(*proc, "100").error().code(), ErrorCode::kNotFound);
}

TEST(TreeTest, ConcurrentLookupsMakeEachEntryOnce) {
  std::map<std::string, uint64_t> names;
  for (int i = 0; i < 200; ++i) names[std::to_string(i)] = i;
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto dir = tree.AddDirectory(kRootIno, "d", std::move(provider));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (const auto& [n, id] : names) {
        if (!tree.Lookup(*dir, n)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(tree.List(*dir)->size(), 200u);
  EXPECT_LE(p->makes.load(), 200 * 8);
  // Every name resolves to one inode, whichever thread made it first.
  std::set<Ino> inos;
  for (const auto& [n, id] : names) inos.insert(tree.Lookup(*dir, n).value()->ino);
  EXPECT_EQ(inos.size(), 200u);
}

TEST(TreeTest, ConcurrentRevalidationListingAndForgetDoNotCrash) {
  std::map<std::string, uint64_t> names;
  for (int i = 0; i < 50; ++i) names[std::to_string(i)] = i;
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto dir = tree.AddDirectory(kRootIno, "d", std::move(provider));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        for (const auto& [n, id] : names) {
          if (auto node = tree.Lookup(*dir, n)) tree.Forget((*node)->ino, 1);
        }
        (void)tree.List(*dir);
      }
    });
  }
  for (int g = 1; g < 200; ++g) {
    p->gen = g;
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();
  (void)tree.List(*dir);
  EXPECT_LE(tree.size(), 2u + 50u);
}

}  // namespace
}  // namespace vmemfs::fs
