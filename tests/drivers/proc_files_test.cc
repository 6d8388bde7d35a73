#include "drivers/proc_files.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace vmemfs::drivers {
namespace {

TEST(ProcFilesTest, ReadSmallFileStopsAtTheLimit) {
  char path[] = "/tmp/vmemfs-proc-files-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text(100000, 'x');
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  EXPECT_EQ(ReadSmallFile(path)->size(), text.size());
  EXPECT_EQ(ReadSmallFile(path, 70000)->size(), 70000u);
  EXPECT_EQ(ReadSmallFile(path, 0)->size(), 0u);
  unlink(path);
  EXPECT_EQ(ReadSmallFile(path).error().code(), ErrorCode::kOs);
}

TEST(ProcFilesTest, ParsePidTakesTheLeadingNumber) {
  EXPECT_EQ(ParsePid("1234\n"), 1234);
  EXPECT_EQ(ParsePid(" \t42 more"), 42);
  EXPECT_EQ(ParsePid(""), std::nullopt);
  EXPECT_EQ(ParsePid("0"), std::nullopt);
  EXPECT_EQ(ParsePid("-5"), std::nullopt);
  EXPECT_EQ(ParsePid("pid"), std::nullopt);
  EXPECT_EQ(ParsePid("99999999999999999999"), std::nullopt);
}

TEST(ProcFilesTest, ProcessOfThreadIsItsThreadGroup) {
  pid_t tid = 0;
  std::thread([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    EXPECT_EQ(ProcessOfThread(tid).value_or(0), getpid());
  }).join();
  EXPECT_NE(tid, getpid());
  EXPECT_FALSE(ProcessOfThread(-1));
}

}  // namespace
}  // namespace vmemfs::drivers
