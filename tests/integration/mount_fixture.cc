#include "mount_fixture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
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
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
                                    const std::string& mountpoint, bool foreground = true) {
  std::vector<std::string> all = {VmemfsBinary()};
  if (foreground) all.push_back("-f");
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

std::string PreadAt(const std::string& path, uint64_t offset, size_t n, int* err) {
  int fd = open(path.c_str(), O_RDONLY);
  std::string buf(n, '\0');
  ssize_t got = fd < 0 ? -1 : pread(fd, buf.data(), n, off_t(offset));
  if (err) *err = got < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  buf.resize(got < 0 ? 0 : size_t(got));
  return buf;
}

std::string InfoValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // The value ends where " # how it was found" begins.
    if (line.rfind(key + ": ", 0) == 0) return line.substr(key.size() + 2, line.find(" # ") - key.size() - 2);
  }
  return "";
}

std::string TrimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

bool WriteLime(const std::string& path, const std::string& source,
               const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::ofstream out(path, std::ios::binary);
  constexpr size_t kChunk = 4 << 20;
  for (const auto& [start, end] : ranges) {
    if (end <= start) return false;
    struct {
      uint32_t magic = 0x4C694D45, version = 1;
      uint64_t start, end, reserved = 0;
    } header;
    static_assert(sizeof header == 32);
    header.start = start;
    header.end = end - 1;  // inclusive
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    for (uint64_t at = start; at < end; at += kChunk) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - at));
      const std::string bytes = PreadAt(source, at, n);
      if (bytes.size() != n) return false;
      out.write(bytes.data(), static_cast<std::streamsize>(n));
    }
  }
  return static_cast<bool>(out.flush());
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

// The daemon vmemfs left behind: a child of ours (we are a subreaper) running vmemfs.
pid_t FindDaemon(pid_t launcher) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::istringstream stat(ReadFile(e.path().string() + "/stat"));
    std::string pid, comm, state, ppid;
    stat >> pid >> comm >> state >> ppid;
    if (comm == "(vmemfs)" && std::stoi(ppid) == getpid() && std::stoi(pid) != launcher) {
      return std::stoi(pid);
    }
  }
  return -1;
}

Mount::Mount(const std::vector<std::string>& args, MountMode mode) {
  stderr_path_ = mnt_.path() + ".stderr";
  if (mode == MountMode::kDaemon) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t launcher = Spawn(VmemfsArgs(args, mnt_.path(), false), stderr_path_);
    int status = 0;
    if (launcher < 0 || waitpid(launcher, &status, 0) != launcher) {
      error_ = "cannot start " + VmemfsBinary();
      return;
    }
    pid_ = FindDaemon(launcher);
    ok_ = WIFEXITED(status) && WEXITSTATUS(status) == 0 && IsMountPoint(mnt_.path());
    if (!ok_) error_ = "daemonized vmemfs failed (" + std::to_string(status) + "): " + Stderr();
    return;
  }
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

namespace {

// Reads one line (up to '\n') within the deadline; "" on timeout or EOF.
std::string ReadLine(int fd, std::string& pending) {
  for (int i = 0; i < 100; ++i) {
    if (auto nl = pending.find('\n'); nl != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return line;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return "";
    pending.append(buf, size_t(n));
  }
  return "";
}

}  // namespace

std::string QmpCommand(const std::string& socket_path, const std::string& command) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string pending, line;
  ReadLine(fd, pending);  // greeting
  std::string caps = "{\"execute\": \"qmp_capabilities\"}\n";
  std::string cmd = command + "\n";
  if (write(fd, caps.data(), caps.size()) < 0) line = "";
  ReadLine(fd, pending);
  if (write(fd, cmd.data(), cmd.size()) < 0) line = "";
  // Skip asynchronous events.
  do {
    line = ReadLine(fd, pending);
  } while (line.find("\"event\"") != std::string::npos);
  close(fd);
  return line;
}

std::string HmpCommand(const std::string& socket_path, const std::string& command_line) {
  std::string reply = QmpCommand(socket_path,
                                 "{\"execute\": \"human-monitor-command\", \"arguments\": "
                                 "{\"command-line\": \"" +
                                     command_line + "\"}}");
  std::string out;
  auto start = reply.find("\"return\": \"");
  if (start == std::string::npos) return "";
  for (size_t i = start + 11; i < reply.size() && reply[i] != '"'; ++i) {
    if (reply[i] == '\\' && i + 1 < reply.size()) {
      char c = reply[++i];
      out += c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
    } else {
      out += reply[i];
    }
  }
  return out;
}

std::string QemuStatus(const std::string& guest_dir) {
  const std::string reply =
      QmpCommand(guest_dir + "/qmp-test.sock", "{\"execute\": \"query-status\"}");
  std::smatch m;
  if (std::regex_search(reply, m, std::regex("\"status\": \"([a-z-]+)\""))) return m[1];
  return reply;
}

std::map<int, std::map<std::string, uint64_t>> TruthRegisters(const std::string& guest) {
  std::map<int, std::map<std::string, uint64_t>> regs;
  std::ifstream in(GuestDir(guest) + "/truth/registers.txt");
  int cpu;
  std::string name, hex;
  while (in >> cpu >> name >> hex) regs[cpu][name] = std::stoull(hex, nullptr, 16);
  return regs;
}

std::map<int, TruthTask> TruthTasks(const std::string& guest) {
  return ReadTruthTasks(GuestDir(guest));
}

namespace {

// The value of status line `key` with its tabs as spaces ("" when absent).
std::string StatusIds(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":\t", 0) != 0) continue;
    line = line.substr(key.size() + 2);
    std::replace(line.begin(), line.end(), '\t', ' ');
    return line;
  }
  return "";
}

}  // namespace

void ExpectTaskIs(const std::string& proc_dir, int pid, const TruthTask& t) {
  std::string status = ReadFile(proc_dir + "/status");
  EXPECT_EQ(StatusIds(status, "Uid"), t.uid) << pid;
  EXPECT_EQ(StatusIds(status, "Gid"), t.gid) << pid;
  EXPECT_EQ(StatusIds(status, "Threads"), t.threads) << pid;
  std::vector<int> tids;
  for (const auto& e : std::filesystem::directory_iterator(proc_dir + "/task")) {
    tids.push_back(std::stoi(e.path().filename()));
  }
  std::sort(tids.begin(), tids.end());
  EXPECT_EQ(tids, t.tids) << pid;
  for (int tid : tids) {
    std::string s = ReadFile(proc_dir + "/task/" + std::to_string(tid) + "/status");
    EXPECT_EQ(StatusIds(s, "Pid"), std::to_string(tid)) << pid;
    EXPECT_EQ(StatusIds(s, "Tgid"), std::to_string(pid)) << tid;
    EXPECT_EQ(StatusIds(s, "Uid"), t.uid) << tid;
    EXPECT_EQ(StatusIds(s, "Gid"), t.gid) << tid;
  }
}

uint64_t TruthSymbol(const std::string& guest, const std::string& symbol) {
  return ReadTruthSymbol(GuestDir(guest), symbol);
}

std::map<int, PsRow> TruthPs(const std::string& guest) {
  return ReadTruthPs(guest.find('/') == std::string::npos ? GuestDir(guest) : guest);
}

int ExpectModuleSymbolFilesReadKmem(const std::string& vm_dir, const std::string& guest,
                                    int va_bits, int count) {
  std::ifstream truth(GuestDir(guest) + "/truth/kallsyms.txt");
  std::string line;
  int checked = 0;
  while (std::getline(truth, line) && checked < count) {
    size_t tab = line.find("\t[");
    if (tab == std::string::npos) continue;
    std::istringstream fields(line.substr(0, tab));
    std::string addr, type, name;
    fields >> addr >> type >> name;
    if (type != "t" && type != "T") continue;  // code: mapped and non-empty
    std::string module = line.substr(tab + 2, line.size() - tab - 3);
    std::string bytes = ReadFile(vm_dir + "/symbols/modules/" + module + "/" + name);
    EXPECT_FALSE(bytes.empty()) << line;
    const uint64_t va = std::stoull(addr, nullptr, 16);
    const size_t n = std::min<size_t>(bytes.size(), 64);
    EXPECT_EQ(bytes.substr(0, n), PreadAt(vm_dir + "/kmem", va & ((1ull << va_bits) - 1), n))
        << line;
    ++checked;
  }
  return checked;
}

}  // namespace vmemfs::testing
