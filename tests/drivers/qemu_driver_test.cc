// The qemu driver on real guests: the l4 test guest (ctest fixture "guests") and a QEMU of the
// test's own that it kills. Every expected value comes from the guest or from QEMU itself.
#include "drivers/qemu_driver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "drivers/snapshot_driver.h"
#include "vmi/linux/guest_root.h"

namespace vmemfs::drivers {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string GuestDir() { return vmemfs::testing::GuestRoot() + "/l4"; }

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A QMP connection of the test's own, so the driver's answers are checked against QEMU
// directly, not against the driver's client.
class RawQmp {
 public:
  explicit RawQmp(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ReadLine();  // greeting
    Execute(R"({"execute": "qmp_capabilities"})");
  }
  ~RawQmp() { close(fd_); }
  nlohmann::json Execute(const std::string& request) {
    const std::string line = request + "\n";
    EXPECT_EQ(write(fd_, line.data(), line.size()), ssize_t(line.size()));
    while (true) {
      nlohmann::json reply = nlohmann::json::parse(ReadLine());
      if (!reply.contains("event")) return reply["return"];
    }
  }
  std::string Hmp(const std::string& command) {
    return Execute(nlohmann::json{{"execute", "human-monitor-command"},
                                  {"arguments", {{"command-line", command}}}}
                       .dump());
  }

 private:
  std::string ReadLine() {
    std::string line;
    char c;
    while (read(fd_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }
  int fd_;
};

// "CR3=0000000002944000" of CPU#0 in `info registers -a` output.
uint64_t RegisterFromHmp(const std::string& text, const std::string& name) {
  const size_t at = text.find(name + "=");
  EXPECT_NE(at, std::string::npos) << name;
  return std::stoull(text.substr(at + name.size() + 1, 16), nullptr, 16);
}

class QemuGuestTest : public ::testing::TestWithParam<RamAccess> {
 protected:
  void SetUp() override {
    if (!Exists(GuestDir() + "/qmp.sock")) GTEST_SKIP() << "no live guest at " << GuestDir();
    Open();
  }
  // QEMU serves one QMP client at a time: the test's own RawQmp only works while the driver
  // is closed.
  void Open() {
    QemuOptions options;
    options.access = GetParam();
    Result<std::unique_ptr<Driver>> d = OpenQemu(GuestDir() + "/qmp.sock", {}, options);
    ASSERT_TRUE(d) << d.error().ToString();
    driver_ = *std::move(d);
  }
  std::unique_ptr<Driver> driver_;
};

TEST_P(QemuGuestTest, DescribesItselfAndItsAccessPath) {
  EXPECT_EQ(driver_->kind(), "qemu");
  EXPECT_TRUE(driver_->live());
  EXPECT_FALSE(driver_->writable());
  const unsigned vcpus = driver_->vcpu_count();
  driver_.reset();
  EXPECT_EQ(vcpus,
            RawQmp(GuestDir() + "/qmp.sock").Execute(R"({"execute": "query-cpus-fast"})").size());
  Open();
  std::string pid_file;
  std::ifstream(GuestDir() + "/qemu.pid") >> pid_file;
  std::map<std::string, Fact> info;
  for (Fact& fact : driver_->Describe()) info[fact.key] = fact;
  EXPECT_EQ(info["pid"].value, pid_file);
  EXPECT_NE(info["pid"].how.find("peer credentials"), std::string::npos) << info["pid"].how;
  EXPECT_EQ(info["accel"].value, "tcg");
  const std::string method = info["ram-access"].value;
  switch (GetParam()) {
    case RamAccess::kAuto: {
      // RAM from the guest's file (the BIOS ROM, private memory of QEMU, is not RAM).
      char* ram = realpath((GuestDir() + "/ram").c_str(), nullptr);
      EXPECT_EQ(method, "shared file " + std::string(ram));
      free(ram);
      break;
    }
    case RamAccess::kProcessVm:
      EXPECT_EQ(method, "process_vm_readv (pid " + pid_file + ")");
      break;
    case RamAccess::kProcMem:
      EXPECT_EQ(method, "/proc/" + pid_file + "/mem");
      break;
  }
  const bool mapped = !driver_->Mapped(0x100000).empty();
  EXPECT_EQ(mapped, GetParam() == RamAccess::kAuto);
  EXPECT_EQ(driver_->FileBacked(0x100000).has_value(), GetParam() == RamAccess::kAuto);
  // RAM is the guest's RAM file (q35 with 256 MiB: all below 4 GiB); the BIOS ROM above it
  // is ROM, not RAM.
  struct stat st;
  ASSERT_EQ(stat((GuestDir() + "/ram").c_str(), &st), 0);
  ASSERT_EQ(driver_->ranges().size(), 1u);
  EXPECT_EQ(driver_->ranges()[0].start, 0u);
  EXPECT_EQ(driver_->ranges()[0].end, uint64_t(st.st_size));
  ASSERT_FALSE(driver_->rom().empty());
  EXPECT_EQ(driver_->rom().back().end, 0x100000000u);
  EXPECT_EQ(driver_->rom().back().how, "info mtree -f: rom, region pc.bios");
  EXPECT_FALSE(driver_->rom().back().in_ranges);
}

TEST_P(QemuGuestTest, PausedPmemEqualsTheRamFile) {
  const int fd = open((GuestDir() + "/ram").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const uint64_t ram_end = driver_->ranges()[0].end;
  std::mt19937_64 rng(42);
  ASSERT_TRUE(driver_->Pause().ok());
  bool equal = true;
  std::vector<std::byte> a(65536), b(65536);
  for (int i = 0; i < 64 && equal; ++i) {
    const uint64_t pa = i == 0 ? 0 : (rng() % (ram_end - a.size())) & ~uint64_t{7};
    equal = driver_->ReadPhys(pa, a).ok() &&
            pread(fd, b.data(), b.size(), off_t(pa)) == ssize_t(b.size()) && a == b;
    EXPECT_TRUE(equal) << "at 0x" << std::hex << pa;
  }
  EXPECT_TRUE(driver_->Resume().ok());
  close(fd);
  EXPECT_EQ(driver_->ReadPhys(ram_end - 2, a).code(), ErrorCode::kFault);
}

TEST_P(QemuGuestTest, RegistersMatchQemusOwnAnswer) {
  driver_.reset();
  std::string text;
  {
    RawQmp raw(GuestDir() + "/qmp.sock");
    raw.Execute(R"({"execute": "stop"})");  // CR3 changes with every context switch
    text = raw.Hmp("info registers -a");
  }
  Open();
  Result<RegisterSet> regs = driver_->Registers(0);
  ASSERT_TRUE(driver_->Resume().ok());
  ASSERT_TRUE(regs) << regs.error().ToString();
  EXPECT_EQ(regs->Get(Register::kCr3), RegisterFromHmp(text, "CR3"));
  EXPECT_EQ(regs->Get(Register::kCr4), RegisterFromHmp(text, "CR4"));
  EXPECT_EQ(regs->Get(Register::kRip), RegisterFromHmp(text, "RIP"));
  EXPECT_TRUE(driver_->Registers(1).has_value());
  EXPECT_EQ(driver_->SetRegister(0, Register::kRax, 1).code(), ErrorCode::kUnsupported);
}

TEST_P(QemuGuestTest, PauseAndResumeAsQmpSeesThem) {
  ASSERT_TRUE(driver_->Pause().ok());
  const auto paused_state = driver_->State();
  driver_.reset();
  const auto paused = RawQmp(GuestDir() + "/qmp.sock").Execute(R"({"execute": "query-status"})");
  Open();
  ASSERT_TRUE(driver_->Resume().ok());
  const auto running_state = driver_->State();
  driver_.reset();
  const auto running = RawQmp(GuestDir() + "/qmp.sock").Execute(R"({"execute": "query-status"})");
  EXPECT_EQ(paused_state, RunState::kPaused);
  EXPECT_EQ(paused["status"], "paused");
  EXPECT_EQ(running_state, RunState::kRunning);
  EXPECT_EQ(running["status"], "running");
}

// The ticker's pid from the guest's truth.
std::string TickerPrefix() {
  std::ifstream markers(GuestDir() + "/truth/markers.txt");
  std::string kind, pid, rest;
  while (markers >> kind >> pid && std::getline(markers, rest)) {
    if (kind == "TICKER") return "VMEMFS-TICKER-" + pid + "-";
  }
  return "";
}

// Every physical address holding `prefix` followed by 20 digits.
std::vector<uint64_t> FindAll(Driver& d, const std::string& prefix) {
  std::vector<uint64_t> hits;
  std::vector<std::byte> chunk(1 << 20);
  const uint64_t end = d.ranges()[0].end;
  for (uint64_t pa = 0; pa < end; pa += chunk.size() - 64) {
    const size_t n = std::min<uint64_t>(chunk.size(), end - pa);
    if (!d.ReadPhys(pa, std::span(chunk).first(n)).ok()) break;
    const std::string_view s(reinterpret_cast<const char*>(chunk.data()), n);
    for (size_t at = s.find(prefix); at != std::string_view::npos; at = s.find(prefix, at + 1)) {
      if (hits.empty() || hits.back() != pa + at) hits.push_back(pa + at);
    }
  }
  return hits;
}

TEST_P(QemuGuestTest, TickerChangesBetweenReads) {
  const std::string prefix = TickerPrefix();
  ASSERT_FALSE(prefix.empty());
  const std::vector<uint64_t> hits = FindAll(*driver_, prefix);
  ASSERT_FALSE(hits.empty());
  auto read_all = [&] {
    std::vector<std::string> values;
    for (uint64_t pa : hits) {
      std::string v(prefix.size() + 20, '\0');
      EXPECT_TRUE(driver_->ReadPhys(pa, std::as_writable_bytes(std::span(v))).ok());
      values.push_back(v);
    }
    return values;
  };
  const std::vector<std::string> before = read_all();
  std::this_thread::sleep_for(milliseconds(300));
  const std::vector<std::string> after = read_all();
  bool changed = false;
  for (size_t i = 0; i < hits.size(); ++i) {
    if (before[i] != after[i] && after[i].starts_with(prefix)) changed = true;
  }
  EXPECT_TRUE(changed) << hits.size() << " copies, e.g. " << before[0];
}

// Reads per second of 4-byte reads, sequential and random over the first range. Printed, not
// asserted: a comparison of the access paths with the snapshot driver on the same guest.
void PrintRates(Driver& d, const std::string& label) {
  const uint64_t end = d.ranges()[0].end;
  constexpr int kReads = 200000;
  uint32_t word;
  auto rate = [&](auto next) {
    const auto t0 = Clock::now();
    for (int i = 0; i < kReads; ++i) {
      if (!d.ReadPhys(next(i), std::as_writable_bytes(std::span(&word, 1))).ok()) return 0.0;
    }
    return kReads / std::chrono::duration<double>(Clock::now() - t0).count();
  };
  std::mt19937_64 rng(7);
  const double seq = rate([](int i) { return uint64_t(i) * 4; });
  const double rnd = rate([&](int) { return (rng() % end) & ~uint64_t{3}; });
  printf("[ rates  ] %-28s sequential %6.2f M reads/s, random %6.2f M reads/s\n", label.c_str(),
         seq / 1e6, rnd / 1e6);
}

TEST_P(QemuGuestTest, ReadRates) {
  const char* names[] = {"qemu shared file", "qemu process_vm_readv", "qemu /proc/PID/mem"};
  PrintRates(*driver_, names[static_cast<int>(GetParam())]);
  if (GetParam() != RamAccess::kAuto || !Exists(GuestDir() + "/raw.mem")) return;
  Result<std::unique_ptr<Driver>> snap = OpenSnapshot(GuestDir() + "/raw.mem", {});
  ASSERT_TRUE(snap);
  PrintRates(**snap, "snapshot raw.mem");
}

INSTANTIATE_TEST_SUITE_P(Access, QemuGuestTest,
                         ::testing::Values(RamAccess::kAuto, RamAccess::kProcessVm,
                                           RamAccess::kProcMem));

// A QEMU of this test's own (no guest OS: firmware only), started and killed here.
class OwnQemu {
 public:
  OwnQemu() {
    char tmpl[] = "/tmp/vmemfs-qemu-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    const std::string ram =
        "memory-backend-file,id=ram,size=64M,mem-path=" + dir_ + "/ram,share=on";
    const std::string qmp = "unix:" + socket() + ",server=on,wait=off";
    pid_ = fork();
    if (pid_ == 0) {
      execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-m", "64M", "-machine",
             "q35,memory-backend=ram", "-object", ram.c_str(), "-qmp", qmp.c_str(), "-display",
             "none", "-vga", "none", "-nodefaults", nullptr);
      _exit(127);
    }
    for (int i = 0; i < 100 && !Exists(socket()); ++i)
      std::this_thread::sleep_for(milliseconds(100));
  }
  ~OwnQemu() {
    Kill();
    unlink((dir_ + "/ram").c_str());
    unlink(socket().c_str());
    rmdir(dir_.c_str());
  }
  std::string socket() const { return dir_ + "/qmp.sock"; }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

class QemuKilledTest : public ::testing::TestWithParam<RamAccess> {};

TEST_P(QemuKilledTest, GoneWithinASecondAndReadsFailFast) {
  if (system("command -v qemu-system-x86_64 >/dev/null") != 0) GTEST_SKIP() << "no QEMU";
  OwnQemu qemu;
  QemuOptions options;
  options.access = GetParam();
  Result<std::unique_ptr<Driver>> d = OpenQemu(qemu.socket(), {}, options);
  ASSERT_TRUE(d) << d.error().ToString();
  Driver& driver = **d;
  std::byte b[4];
  ASSERT_TRUE(driver.ReadPhys(0x1000, b).ok());
  EXPECT_EQ(driver.State(), RunState::kRunning);
  qemu.Kill();
  const auto killed = Clock::now();
  while (driver.State() != RunState::kGone && Clock::now() - killed < milliseconds(1000)) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(driver.State(), RunState::kGone);
  const auto t0 = Clock::now();
  EXPECT_EQ(driver.ReadPhys(0x1000, b).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(driver.Registers(0).status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(driver.Pause().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(driver.Mapped(0x1000).empty());
  EXPECT_LT(Clock::now() - t0, milliseconds(100));
  EXPECT_LT(Clock::now() - killed, milliseconds(1000));
}

INSTANTIATE_TEST_SUITE_P(Access, QemuKilledTest,
                         ::testing::Values(RamAccess::kAuto, RamAccess::kProcessVm));

TEST(QemuDriverTest, MissingSocketNamesIt) {
  Result<std::unique_ptr<Driver>> d = OpenQemu("/nonexistent/qmp.sock", {});
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("/nonexistent/qmp.sock"), std::string::npos);
}

}  // namespace
}  // namespace vmemfs::drivers
