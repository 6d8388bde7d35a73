// The gdb driver on the real test guests (tools/guest/guest.py): bytes, registers and run
// state checked against the guest's shared RAM file and a raw QMP connection. Every test
// leaves the VM running (the driver detaches on destruction).
//
// Guests: $VMEMFS_GUESTS/{l4,l5}, else the build's guests directory (VMEMFS_DEFAULT_GUESTS,
// when the build defines it); tests skip when a guest's gdb.sock is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"

namespace vmemfs::drivers {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string GuestDir(const std::string& name) {
  const char* env = getenv("VMEMFS_GUESTS");
  std::string root = env && *env ? env : "";
#ifdef VMEMFS_DEFAULT_GUESTS
  if (root.empty()) root = VMEMFS_DEFAULT_GUESTS;
#endif
  return root.empty() ? "" : root + "/" + name;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A minimal QMP client: one command at a time, events skipped, 10 s receive timeout.
class Qmp {
 public:
  explicit Qmp(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    ok_ = !Line().empty() &&
          Execute(R"({"execute":"qmp_capabilities"})").find("return") != std::string::npos;
  }
  ~Qmp() { close(fd_); }
  bool ok() const { return ok_; }

  // The reply line (JSON) to `json`.
  std::string Execute(const std::string& json) {
    const std::string out = json + "\n";
    if (write(fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return "";
    for (;;) {
      std::string line = Line();
      if (line.empty() || line.find("\"event\"") == std::string::npos) return line;
    }
  }

  // The text of an HMP command, with JSON's \r\n escapes undone.
  std::string Hmp(const std::string& command) {
    const std::string reply = Execute(
        R"({"execute":"human-monitor-command","arguments":{"command-line":")" + command + "\"}}");
    std::string text;
    for (size_t i = 0; i < reply.size(); ++i) {
      if (reply[i] == '\\' && i + 1 < reply.size()) {
        const char e = reply[++i];
        text.push_back(e == 'n' ? '\n' : e == 'r' ? '\r' : e);
      } else {
        text.push_back(reply[i]);
      }
    }
    return text;
  }

  bool Running() {
    return Execute(R"({"execute":"query-status"})").find("\"running\": true") != std::string::npos;
  }

 private:
  std::string Line() {
    std::string line;
    char c;
    while (read(fd_, &c, 1) == 1) {
      if (c == '\n') return line;
      line.push_back(c);
    }
    return line;
  }

  int fd_ = -1;
  bool ok_ = false;
};

// The hex value after `key` in `text` ("CR3=000000000232a000 ..."), or nullopt.
std::optional<uint64_t> HexAfter(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(text.c_str() + at + key.size(), nullptr, 16);
}

class GdbGuestTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = GuestDir(GetParam());
    if (dir_.empty() || !Exists(dir_ + "/gdb.sock") || !Exists(dir_ + "/ram")) {
      GTEST_SKIP() << "no test guest " << GetParam() << " (set VMEMFS_GUESTS)";
    }
    ram_fd_ = open((dir_ + "/ram").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ram_fd_, 0);
    struct stat st;
    ASSERT_EQ(fstat(ram_fd_, &st), 0);
    ram_size_ = static_cast<uint64_t>(st.st_size);
    auto d = OpenSource("gdb:unix:" + dir_ + "/gdb.sock", {});
    ASSERT_TRUE(d) << d.error().ToString();
    driver_ = std::move(*d);
  }
  void TearDown() override {
    driver_.reset();  // detaches: the VM runs on
    if (ram_fd_ >= 0) close(ram_fd_);
  }

  std::string RamFile(uint64_t pa, size_t n) {
    std::string buf(n, '\0');
    EXPECT_EQ(pread(ram_fd_, buf.data(), n, static_cast<off_t>(pa)), static_cast<ssize_t>(n));
    return buf;
  }
  std::string Phys(uint64_t pa, size_t n) {
    std::string buf(n, '\0');
    Status s = driver_->ReadPhys(pa, std::as_writable_bytes(std::span(buf)));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return buf;
  }

  std::string dir_;
  int ram_fd_ = -1;
  uint64_t ram_size_ = 0;
  std::unique_ptr<Driver> driver_;
};

TEST_P(GdbGuestTest, ProbedRangesMatchTheRamFile) {
  // All RAM from 0 in one range (no VGA hole: the guests have no VGA); the BIOS ROM above it
  // is ROM, not RAM.
  ASSERT_EQ(driver_->ranges().size(), 1u);
  EXPECT_EQ(driver_->ranges().front(), (PhysRange{0, ram_size_}));
  EXPECT_EQ(driver_->end_address(), ram_size_);
  ASSERT_FALSE(driver_->rom().empty());
  EXPECT_EQ(driver_->rom().back().end, uint64_t{1} << 32);
  EXPECT_FALSE(driver_->rom().back().in_ranges);
  EXPECT_EQ(driver_->vcpu_count(), 2u);
  EXPECT_EQ(driver_->State(), RunState::kRunning);
  for (const Fact& f : driver_->Describe()) {
    std::printf("  info %s: %s (%s)\n", f.key.c_str(), f.value.c_str(), f.how.c_str());
  }
}

TEST_P(GdbGuestTest, PhysicalBytesEqualTheRamFileWhilePaused) {
  ASSERT_TRUE(driver_->Pause().ok());
  std::mt19937_64 rng(42);
  std::vector<std::pair<uint64_t, size_t>> reads = {{0, 4096},
                                                    {0x9f000, 4096},
                                                    {0x100000, 65536},
                                                    {0x1000000 + 123, 10000},
                                                    {ram_size_ - 100, 100}};
  for (int i = 0; i < 32; ++i) reads.push_back({rng() % (ram_size_ - 4096), 1 + rng() % 4096});
  for (const auto& [pa, n] : reads) {
    EXPECT_EQ(Phys(pa, n), RamFile(pa, n))
        << "at 0x" << std::hex << pa << " size " << std::dec << n;
  }
  std::byte b[2];
  EXPECT_EQ(driver_->ReadPhys(ram_size_ - 1, b).code(), ErrorCode::kFault);
  ASSERT_TRUE(driver_->Resume().ok());
}

TEST_P(GdbGuestTest, RegistersMatchQmpWhilePaused) {
  ASSERT_TRUE(driver_->Pause().ok());
  Qmp qmp(dir_ + "/qmp.sock");
  ASSERT_TRUE(qmp.ok());
  const std::string text = qmp.Hmp("info registers -a");
  for (unsigned cpu = 0; cpu < driver_->vcpu_count(); ++cpu) {
    const size_t at = text.find("CPU#" + std::to_string(cpu));
    ASSERT_NE(at, std::string::npos) << text;
    const std::string block = text.substr(at, text.find("CPU#", at + 4) - at);
    auto regs = driver_->Registers(cpu);
    ASSERT_TRUE(regs) << regs.error().ToString();
    EXPECT_EQ(regs->Get(Register::kCr3), HexAfter(block, "CR3=")) << "vCPU " << cpu;
    EXPECT_EQ(regs->Get(Register::kCr4), HexAfter(block, "CR4=")) << "vCPU " << cpu;
    EXPECT_EQ(regs->Get(Register::kCr0), HexAfter(block, "CR0=")) << "vCPU " << cpu;
    EXPECT_EQ(regs->Get(Register::kEfer), HexAfter(block, "EFER=")) << "vCPU " << cpu;
    EXPECT_EQ(regs->Get(Register::kRip), HexAfter(block, "RIP=")) << "vCPU " << cpu;
    EXPECT_EQ(regs->Get(Register::kRsp), HexAfter(block, "RSP=")) << "vCPU " << cpu;
    // "GS =<4 hex selector> <base> ...".
    const size_t gs = block.find("GS =");
    ASSERT_NE(gs, std::string::npos);
    EXPECT_EQ(regs->Get(Register::kGsBase), HexAfter(block.substr(gs + 9), "")) << "vCPU " << cpu;
  }
  // -cpu max boots with 5-level paging, qemu64 with 4.
  auto regs0 = driver_->Registers(0);
  ASSERT_TRUE(regs0);
  EXPECT_EQ((*regs0->Get(Register::kCr4) >> 12) & 1, GetParam() == "l5" ? 1u : 0u);
  ASSERT_TRUE(driver_->Resume().ok());
  EXPECT_TRUE(qmp.Running());
}

TEST_P(GdbGuestTest, PauseAndResumeShowInQmp) {
  Qmp qmp(dir_ + "/qmp.sock");
  ASSERT_TRUE(qmp.ok());
  EXPECT_TRUE(qmp.Running());
  ASSERT_TRUE(driver_->Pause().ok());
  EXPECT_EQ(driver_->State(), RunState::kPaused);
  EXPECT_FALSE(qmp.Running());
  ASSERT_TRUE(driver_->Resume().ok());
  EXPECT_EQ(driver_->State(), RunState::kRunning);
  EXPECT_TRUE(qmp.Running());
  // A read while running stops the VM only for the read.
  Phys(0x100000, 4096);
  EXPECT_TRUE(qmp.Running());
}

// The physical address of the ticker's counter: the copy in the RAM file that changes.
std::optional<uint64_t> FindTicker(int ram_fd, uint64_t size, const std::string& prefix) {
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, ram_fd, 0);
  if (map == MAP_FAILED) return std::nullopt;
  const std::string_view ram(static_cast<const char*>(map), size);
  std::vector<std::pair<uint64_t, std::string>> hits;
  for (size_t at = ram.find(prefix); at != std::string_view::npos && hits.size() < 64;
       at = ram.find(prefix, at + 1)) {
    hits.push_back({at, std::string(ram.substr(at, prefix.size() + 20))});
  }
  std::this_thread::sleep_for(milliseconds(300));
  std::optional<uint64_t> found;
  for (const auto& [at, old] : hits) {
    if (ram.substr(at, old.size()) != old) found = at;
  }
  munmap(map, size);
  return found;
}

TEST_P(GdbGuestTest, TickerChangesWhileRunning) {
  std::ifstream markers(dir_ + "/truth/markers.txt");
  std::string line, pid;
  while (std::getline(markers, line)) {
    if (line.rfind("TICKER ", 0) == 0) pid = line.substr(7, line.find(' ', 7) - 7);
  }
  ASSERT_FALSE(pid.empty());
  const std::string prefix = "VMEMFS-TICKER-" + pid + "-";
  const std::optional<uint64_t> pa = FindTicker(ram_fd_, ram_size_, prefix);
  ASSERT_TRUE(pa) << "no changing " << prefix << " in RAM";
  const std::string first = Phys(*pa, prefix.size() + 20);
  std::this_thread::sleep_for(milliseconds(300));
  const std::string second = Phys(*pa, prefix.size() + 20);
  EXPECT_EQ(first.substr(0, prefix.size()), prefix);
  EXPECT_NE(first, second);
  EXPECT_EQ(driver_->State(), RunState::kRunning);
  std::printf("  ticker at 0x%" PRIx64 ": %s -> %s\n", *pa, first.c_str(), second.c_str());
}

template <typename F>
double Seconds(F f) {
  const auto start = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST_P(GdbGuestTest, ReadRates) {
  constexpr size_t kMiB = 1 << 20;
  constexpr int kRandom = 300;
  std::string buf(kMiB, '\0');
  auto out = std::as_writable_bytes(std::span(buf));
  const uint64_t base = 16 * kMiB;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> addrs(kRandom);
  for (auto& a : addrs) a = (rng() % (ram_size_ - 8)) & ~uint64_t{3};

  const double seq_running = Seconds([&] { ASSERT_TRUE(driver_->ReadPhys(base, out).ok()); });
  const double seq_chunks = Seconds([&] {
    for (size_t off = 0; off < kMiB; off += 128 * 1024) {
      ASSERT_TRUE(driver_->ReadPhys(base + off, out.subspan(off, 128 * 1024)).ok());
    }
  });
  const double rnd_running = Seconds([&] {
    for (uint64_t a : addrs) ASSERT_TRUE(driver_->ReadPhys(a, out.subspan(0, 4)).ok());
  });
  ASSERT_TRUE(driver_->Pause().ok());
  const double seq_paused = Seconds([&] { ASSERT_TRUE(driver_->ReadPhys(base, out).ok()); });
  const double rnd_paused = Seconds([&] {
    for (uint64_t a : addrs) ASSERT_TRUE(driver_->ReadPhys(a, out.subspan(0, 4)).ok());
  });
  ASSERT_TRUE(driver_->Resume().ok());
  const double seq_file = Seconds([&] { (void)!pread(ram_fd_, buf.data(), kMiB, base); });
  const double rnd_file = Seconds([&] {
    for (uint64_t a : addrs) (void)!pread(ram_fd_, buf.data(), 4, static_cast<off_t>(a));
  });
  std::printf(
      "  [%s] sequential 1 MiB: gdb running %.2f MiB/s (one read), %.2f MiB/s "
      "(8 x 128 KiB), gdb paused %.2f MiB/s; ram file %.0f MiB/s\n",
      GetParam().c_str(), 1 / seq_running, 1 / seq_chunks, 1 / seq_paused, 1 / seq_file);
  std::printf(
      "  [%s] random 4 B x %d: gdb running %.0f us/read, gdb paused %.0f us/read; "
      "ram file %.2f us/read\n",
      GetParam().c_str(), kRandom, rnd_running / kRandom * 1e6, rnd_paused / kRandom * 1e6,
      rnd_file / kRandom * 1e6);
}

INSTANTIATE_TEST_SUITE_P(Guests, GdbGuestTest, ::testing::Values("l4", "l5"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vmemfs::drivers
