#include "mount_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace vmemfs::testing {
namespace {

std::string Env(const char* name, const char* fallback) {
  const char* v = getenv(name);
  return v && *v ? v : fallback;
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& stderr_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

void Unmount(const std::string& path) {
  std::string cmd = "fusermount3 -u -z '" + path + "' 2>/dev/null";
  if (system(cmd.c_str()) != 0) {
    // Not mounted (any more): nothing to do.
  }
}

std::vector<std::string> VmemfsArgs(const std::vector<std::string>& args,
                                    const std::string& mountpoint) {
  std::vector<std::string> all = {VmemfsBinary(), "-f"};
  all.insert(all.end(), args.begin(), args.end());
  all.push_back(mountpoint);
  return all;
}

}  // namespace

std::string VmemfsBinary() { return Env("VMEMFS_BIN", VMEMFS_DEFAULT_BIN); }
std::string GuestsRoot() { return Env("VMEMFS_GUESTS", VMEMFS_DEFAULT_GUESTS); }
std::string GuestDir(const std::string& guest) { return GuestsRoot() + "/" + guest; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TrimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vmemfs-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool IsMountPoint(const std::string& path) {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, mnt, rest;
  while (mounts >> dev >> mnt && std::getline(mounts, rest)) {
    if (mnt == path) return true;
  }
  return false;
}

Mount::Mount(const std::vector<std::string>& args) {
  stderr_path_ = mnt_.path() + ".stderr";
  pid_ = Spawn(VmemfsArgs(args, mnt_.path()), stderr_path_);
  if (pid_ < 0) {
    error_ = "cannot start " + VmemfsBinary();
    return;
  }
  for (int i = 0; i < 1000; ++i) {  // up to 10 s
    if (IsMountPoint(mnt_.path())) {
      ok_ = true;
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "vmemfs exited before mounting: " + Stderr();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = "mount did not appear within 10 s: " + Stderr();
}

Mount::~Mount() {
  Unmount(mnt_.path());
  if (pid_ > 0) {
    int status;
    for (int i = 0; i < 500 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (kill(pid_, 0) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  unlink(stderr_path_.c_str());
}

std::string Mount::Stderr() const { return ReadFile(stderr_path_); }

RunResult RunVmemfs(const std::vector<std::string>& args, const std::string& mountpoint,
                    int timeout_s) {
  std::string err_path = mountpoint + ".stderr";
  pid_t pid = Spawn(VmemfsArgs(args, mountpoint), err_path);
  RunResult result{-1, "", false};
  int status = 0;
  for (int i = 0; i < timeout_s * 100; ++i) {
    result.mounted = result.mounted || IsMountPoint(mountpoint);
    if (waitpid(pid, &status, WNOHANG) == pid) {
      result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      result.err = ReadFile(err_path);
      unlink(err_path.c_str());
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Unmount(mountpoint);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  result.err = ReadFile(err_path);
  unlink(err_path.c_str());
  return result;
}

std::map<int, std::map<std::string, uint64_t>> TruthRegisters(const std::string& guest) {
  std::map<int, std::map<std::string, uint64_t>> regs;
  std::ifstream in(GuestDir(guest) + "/truth/registers.txt");
  int cpu;
  std::string name, hex;
  while (in >> cpu >> name >> hex) regs[cpu][name] = std::stoull(hex, nullptr, 16);
  return regs;
}

uint64_t TruthSymbol(const std::string& guest, const std::string& symbol) {
  std::ifstream in(GuestDir(guest) + "/truth/kallsyms.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string addr, type, name;
    if (ls >> addr >> type >> name && name == symbol) return std::stoull(addr, nullptr, 16);
  }
  return 0;
}

}  // namespace vmemfs::testing
