// Serves a tree over a real FUSE mount in this process and checks what syscalls see,
// including the errno of a failing backend.
#include "fs/fuse_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fs/vm_directory.h"
#include "testing/faulty_driver.h"
#include "testing/memory_driver.h"

namespace vmemfs::fs {
namespace {

using testing::FaultyDriver;
using testing::MemoryDriver;

bool IsMounted(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, mnt, rest;
  while (mounts >> dev >> mnt && std::getline(mounts, rest)) {
    if (mnt == path) return true;
  }
  return false;
}

class FuseServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vmemfs-fs-test-XXXXXX";
    mnt_ = mkdtemp(tmpl);
    auto memory = std::make_unique<MemoryDriver>(
        MemoryDriver::Options{.ranges = {{0, 0x10000}, {0x20000, 0x30000}}});
    memory->FillPattern();
    auto driver = std::make_unique<FaultyDriver>(std::move(memory));
    fake_ = driver.get();
    guest_ = std::move(*vmi::Guest::Open(std::move(driver)));
    ASSERT_TRUE(AddVmDirectory(tree_, *guest_, {"vm", "fake:"}).ok());
    ServeOptions options;
    options.mountpoint = mnt_;
    options.foreground = true;
    server_ = std::thread([this, options] { served_ = Serve(tree_, options); });
    for (int i = 0; i < 500 && !IsMounted(mnt_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(IsMounted(mnt_));
  }
  void TearDown() override {
    std::string cmd = "fusermount3 -u -z " + mnt_;
    EXPECT_EQ(system(cmd.c_str()), 0);
    server_.join();
    EXPECT_TRUE(served_.ok()) << served_.ToString();
    std::filesystem::remove_all(mnt_);
  }
  std::string path(const char* rel) const { return mnt_ + "/" + rel; }

  std::string mnt_;
  FaultyDriver* fake_ = nullptr;
  std::unique_ptr<vmi::Guest> guest_;
  Tree tree_;
  std::thread server_;
  Status served_;
};

TEST_F(FuseServerTest, ReadsGapsAndErrorsAsSyscallsSeeThem) {
  int fd = open(path("vm/pmem").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0x30000);
  EXPECT_EQ(st.st_blocks, 0x20000 / 512);  // the RAM, not the gap: du and tar -S see the hole

  std::vector<std::byte> buf(0x20000);
  ASSERT_EQ(pread(fd, buf.data(), buf.size(), 0x8000), ssize_t(buf.size()));
  for (size_t i = 0; i < buf.size(); ++i) {
    uint64_t a = 0x8000 + i;
    bool ram = a < 0x10000 || a >= 0x20000;
    ASSERT_EQ(buf[i], ram ? MemoryDriver::Pattern(a) : std::byte{0}) << a;
  }
  EXPECT_EQ(lseek(fd, 0x10000, SEEK_DATA), 0x20000);
  EXPECT_EQ(lseek(fd, 0x100, SEEK_HOLE), 0x10000);
  close(fd);
}

TEST_F(FuseServerTest, AFailingBackendGivesEio) {
  fake_->FailReads({0x24000, 0x24001}, OsError("fake read", EIO));
  // A fresh open with direct reads of exactly the failing page: the kernel cache cannot help.
  int fd = open(path("vm/pmem").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char c;
  errno = 0;
  EXPECT_EQ(pread(fd, &c, 1, 0x24000), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
}

TEST_F(FuseServerTest, DirectoriesListTheVmFiles) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path("vm"))) {
    names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"info", "pmem"}));
  struct stat st;
  EXPECT_EQ(stat(path("vm/nothing").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
}

}  // namespace
}  // namespace vmemfs::fs
