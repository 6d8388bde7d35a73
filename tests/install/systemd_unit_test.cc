// The unit template vmemfs-libvirt@.service: systemd accepts it, and its ExecStart line, with
// the instance filled in as systemd would, mounts the connection's domains until its
// ExecStop line runs. systemd is not PID 1 in the test machines, so the lines are run here.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <thread>

#include "mount_fixture.h"
#include "shell.h"
#include "staged_install.h"

namespace vmemfs::testing {
namespace {

std::string Unit() { return StagedPrefix() + "/lib/systemd/system/vmemfs-libvirt@.service"; }

// The value of `key=` in the unit, with %I and %i replaced by the instance `uri` (unescaped
// and escaped) and /run/ by `run` (a test's own directory).
std::string UnitLine(const std::string& key, const std::string& uri, const std::string& run) {
  std::istringstream in(ReadFile(Unit()));
  std::string escaped = TrimNewline(Shell("systemd-escape " + Quoted(uri)).out);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key + "=")) continue;
    line = line.substr(key.size() + 1);
    line = std::regex_replace(line, std::regex("%I"), uri);
    line = std::regex_replace(line, std::regex("%i"), escaped);
    return std::regex_replace(line, std::regex(" /run/"), " " + run + "/");
  }
  return "";
}

TEST(SystemdUnit, SystemdAcceptsIt) {
  TempDir dir;
  std::string unit = dir.path() + "/vmemfs-libvirt@test.service";
  ASSERT_EQ(Shell("cp " + Quoted(Unit()) + " " + Quoted(unit)).status, 0);
  ShellResult r = Shell("systemd-analyze verify --man=no " + Quoted(unit));
  // systemd looks the bare command name up in /usr/local/bin and /usr/bin only.
  bool installed =
      access("/usr/bin/vmemfs", X_OK) == 0 || access("/usr/local/bin/vmemfs", X_OK) == 0;
  std::regex not_found(".*Command vmemfs is not executable.*\n");
  std::string rest = installed ? r.out : std::regex_replace(r.out, not_found, "");
  EXPECT_EQ(rest, "") << r.out;
}

// Runs ExecStart with the staged install's bin/ on PATH (where systemd would find the .deb's),
// for libvirt's built-in test:///default connection.
TEST(SystemdUnit, ExecStartMountsTheConnectionUntilExecStop) {
  std::string pid1 = TrimNewline(ReadFile("/proc/1/comm"));
  if (pid1 == "systemd") GTEST_LOG_(INFO) << "systemd is PID 1; the lines are still run by hand";
  TempDir run;
  std::string uri = "test:///default";
  std::string start = UnitLine("ExecStart", uri, run.path());
  std::string stop = UnitLine("ExecStop", uri, run.path());
  ASSERT_NE(start, "");
  ASSERT_NE(stop, "");
  std::string mnt = start.substr(start.rfind(' ') + 1);
  ASSERT_EQ(Shell("mkdir -p " + Quoted(mnt)).status, 0);  // RuntimeDirectory=
  pid_t pid = fork();
  if (pid == 0) {
    std::string path = StagedPrefix() + "/bin:" + getenv("PATH");
    setenv("PATH", path.c_str(), 1);
    execl("/bin/sh", "sh", "-c", ("exec " + start).c_str(), nullptr);
    _exit(127);
  }
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = IsMountPoint(mnt);
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(up) << start;
  if (up) {
    EXPECT_EQ(Shell("ls " + Quoted(mnt)).out, "test\n");
  }
  EXPECT_EQ(Shell(stop).status, 0) << stop;
  int status = 0;
  if (!up) kill(pid, SIGTERM);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (up) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
}

}  // namespace
}  // namespace vmemfs::testing
