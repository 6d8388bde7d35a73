#include "fs/tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

// Lists the names it is given; makes a text file per name and counts the makes.
class FakeProvider : public DirectoryProvider {
 public:
  explicit FakeProvider(std::vector<std::string>* names) : names_(names) {}
  Result<std::vector<std::string>> Names() override { return *names_; }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    for (const auto& n : *names_) {
      if (n == name) {
        ++makes;
        return std::optional<Entry>(Entry::OfFile(MakeTextFile(std::string(name))));
      }
    }
    return std::optional<Entry>();
  }
  std::atomic<int> makes{0};

 private:
  std::vector<std::string>* names_;
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
  ASSERT_TRUE(tree.AddFile(*dir, "info", MakeTextFile("x")));
  EXPECT_FALSE(tree.AddFile(*dir, "info", MakeTextFile("y")));  // duplicate
  EXPECT_FALSE(tree.AddDirectory(*dir, "a/b"));
  EXPECT_FALSE(tree.AddDirectory(*dir, ".."));
  auto info = tree.Lookup(*dir, "info");
  ASSERT_TRUE(info);
  EXPECT_FALSE((*info)->is_dir());
  EXPECT_FALSE(tree.AddFile((*info)->ino, "child", MakeTextFile("z")));  // parent is a file
  EXPECT_EQ(tree.Lookup(*dir, "nothing").error().code(), ErrorCode::kNotFound);
}

TEST(TreeTest, ProviderEntriesAreMadeOnceAndListedWhileTheProviderListsThem) {
  std::vector<std::string> names = {"1", "2"};
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto proc = tree.AddDirectory(kRootIno, "proc", std::move(provider));
  ASSERT_TRUE(proc);
  ASSERT_TRUE(tree.AddFile(*proc, "self-test", MakeTextFile("fixed")));
  auto one = tree.Lookup(*proc, "1");
  ASSERT_TRUE(one);
  EXPECT_EQ(tree.Lookup(*proc, "1").value()->ino, (*one)->ino);
  EXPECT_EQ(p->makes.load(), 1);
  EXPECT_EQ(Names(*tree.List(*proc)), (std::vector<std::string>{"self-test", "1", "2"}));
  names = {"2", "3"};  // process 1 exits, 3 starts
  EXPECT_EQ(Names(*tree.List(*proc)), (std::vector<std::string>{"self-test", "2", "3"}));
  EXPECT_FALSE(tree.Lookup(*proc, "4"));
}

TEST(TreeTest, ForgetMakesTheProviderAskedAgainWithANewInode) {
  std::vector<std::string> names = {"vm"};
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto root = tree.AddDirectory(kRootIno, "domains", std::move(provider));
  Ino first = tree.Lookup(*root, "vm").value()->ino;
  tree.Forget(*root, "vm");
  Ino second = tree.Lookup(*root, "vm").value()->ino;
  EXPECT_NE(first, second);
  EXPECT_EQ(p->makes.load(), 2);
  EXPECT_NE(tree.Get(first), nullptr);  // requests in flight may still use it
}

TEST(TreeTest, ConcurrentLookupsMakeEachEntryOnce) {
  std::vector<std::string> names;
  for (int i = 0; i < 200; ++i) names.push_back(std::to_string(i));
  auto provider = std::make_unique<FakeProvider>(&names);
  FakeProvider* p = provider.get();
  Tree tree;
  auto dir = tree.AddDirectory(kRootIno, "d", std::move(provider));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (const auto& n : names) {
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
  for (const auto& n : names) inos.insert(tree.Lookup(*dir, n).value()->ino);
  EXPECT_EQ(inos.size(), 200u);
}

}  // namespace
}  // namespace vmemfs::fs
