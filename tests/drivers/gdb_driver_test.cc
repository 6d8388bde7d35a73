// The gdb driver against a fake stub that behaves like QEMU's: it stops the VM on connect,
// answers nothing while the VM runs (a byte stops it and is lost, as in QEMU), serves
// physical memory from a buffer and a fixed register block.
#include "drivers/gdb_driver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drivers/gdb_fake_stub.h"
#include "drivers/registry.h"

namespace vmemfs::drivers {
namespace {

using std::chrono::milliseconds;
using testing::FakeStub;

constexpr uint64_t kRam = 0x10000;

// QEMU x86_64 'g' block: 608 bytes, a few registers set.
std::string RegisterBlock(uint64_t cr3) {
  std::string raw(608, '\0');
  auto put = [&](size_t off, uint64_t v, size_t n) { std::memcpy(raw.data() + off, &v, n); };
  put(0, 0x1111, 8);                // rax
  put(56, 0x7ff0, 8);               // rsp
  put(128, 0xffffffff81000000, 8);  // rip
  put(136, 0x246, 4);               // eflags
  put(140, 0x10, 4);                // cs
  put(172, 0xffff888000000000, 8);  // gs_base
  put(188, 0x80050033, 8);          // cr0
  put(204, cr3, 8);
  put(212, 0x6b0, 8);  // cr4
  put(228, 0xd01, 8);  // efer
  return rsp::ToHex(raw);
}

// qemu-system-i386's 'g' block: 4-byte registers, GPRs in hardware order (eax, ecx, edx, ebx,
// esp, ebp, esi, edi), then eip, eflags, six selectors, fs_base, gs_base, k_gs_base, cr0, cr2,
// cr3, cr4, cr8, efer (target/i386/gdbstub.c without TARGET_X86_64); 344 bytes with the FPU.
std::string RegisterBlock32(uint32_t cr3) {
  std::string raw(344, '\0');
  auto put = [&](size_t off, uint32_t v) { std::memcpy(raw.data() + off, &v, 4); };
  put(0, 0x1111);       // eax
  put(4, 0x2222);       // ecx
  put(12, 0x4444);      // ebx
  put(16, 0xc5c93f28);  // esp
  put(32, 0xc992fcf3);  // eip
  put(36, 0x200206);    // eflags
  put(40, 0x60);        // cs
  put(64, 0xf5c3b000);  // fs_base
  put(72, 0xdead);      // k_gs_base: no such register on i386
  put(76, 0x80050033);  // cr0
  put(84, cr3);
  put(88, 0x350ef0);  // cr4 (PAE)
  put(92, 0x1);       // cr8
  put(96, 0x800);     // efer (NXE)
  return rsp::ToHex(raw);
}

// What target.xml names (as QEMU 7.2 sends it; "" for a stub without qXfer).
enum class StubArch { kNone, kX86_64, kI386, kArm };

class QemuLikeStub {
 public:
  explicit QemuLikeStub(bool phys_mode = true, std::string mtree = "",
                        StubArch arch = StubArch::kNone)
      : phys_mode_(phys_mode), mtree_(std::move(mtree)), arch_(arch), memory_(kRam, '\0') {
    for (size_t i = 0; i < memory_.size(); ++i) memory_[i] = static_cast<char>(i * 7 + 3);
    stub_ = std::make_unique<FakeStub>([this](const std::string& p) { return Handle(p); });
    // QEMU stops a running VM when a debugger connects and says so.
    stub_->Push(rsp::Frame("T02thread:01;"));
  }

  std::unique_ptr<GdbRemote> Client(milliseconds timeout = milliseconds(1000)) {
    return GdbRemote::FromFd(stub_->TakeClientFd(), "fake", GdbRemote::Options{timeout});
  }
  FakeStub& stub() { return *stub_; }
  bool running() const { return running_; }
  void GoSilent() { silent_ = true; }
  // Someone else (QMP "stop") stops the VM; QEMU reports it to the debugger.
  void StopExternally() {
    running_ = false;
    stub_->Push(rsp::Frame("T02thread:01;"));
  }
  int reads() const { return reads_; }
  std::string memory(size_t at, size_t n) {
    std::lock_guard lock(mu_);
    return memory_.substr(at, n);
  }

 private:
  std::string Handle(const std::string& p) {
    std::lock_guard lock(mu_);
    if (silent_) return "";
    if (running_) {
      // QEMU: any byte while the VM runs stops it; the byte itself is lost.
      running_ = false;
      return rsp::Frame("T02thread:01;");
    }
    if (p == "\x03") return "";
    if (p.rfind("qSupported", 0) == 0) {
      return rsp::Frame(arch_ == StubArch::kNone
                            ? "PacketSize=100;vContSupported+"
                            : "PacketSize=100;qXfer:features:read+;vContSupported+");
    }
    if (p.rfind("qXfer:features:read:target.xml:", 0) == 0) return TargetXml(p);
    if (p == "Qqemu.PhyMemMode:1") return rsp::Frame(phys_mode_ ? "OK" : "");
    if (p == "qfThreadInfo") return rsp::Frame("m01,02");
    if (p == "qsThreadInfo") return rsp::Frame("l");
    if (p.rfind("Hg", 0) == 0) {
      thread_ = p.substr(2);
      return rsp::Frame("OK");
    }
    if (p == "g" && arch_ == StubArch::kI386) {
      return rsp::Frame(RegisterBlock32(thread_ == "02" ? 0x2020 : 0x1c65c20));
    }
    if (p == "g") return rsp::Frame(RegisterBlock(thread_ == "02" ? 0x2000 : 0x1000));
    if (p == "?") return rsp::Frame("T05thread:01;");
    if (p == "vCont;c" || p == "c") {
      running_ = true;
      return "";
    }
    if (p == "D") {
      running_ = true;
      return rsp::Frame("OK");
    }
    if (p.rfind("qRcmd,", 0) == 0) {
      if (mtree_.empty()) return rsp::Frame("");
      return rsp::Frame("O" + rsp::ToHex(mtree_)) + rsp::Frame("OK");
    }
    if (p[0] == 'm' || p[0] == 'M') return Memory(p);
    if (p[0] == 'P') return rsp::Frame("OK");
    return rsp::Frame("");
  }

  // Served in pieces of at most 40 bytes ('m' more, 'l' last), as a stub with a small packet
  // size would.
  std::string TargetXml(const std::string& p) {
    const std::string name = arch_ == StubArch::kI386  ? "i386"
                             : arch_ == StubArch::kArm ? "aarch64"
                                                       : "i386:x86-64";
    const std::string xml =
        "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
        "<target><architecture>" +
        name + "</architecture><xi:include href=\"x.xml\"/></target>";
    uint64_t off = 0, len = 0;
    if (std::sscanf(p.c_str() + p.rfind(':') + 1, "%lx,%lx", &off, &len) != 2)
      return rsp::Frame("E01");
    if (off >= xml.size()) return rsp::Frame("l");
    const std::string piece = xml.substr(off, std::min<uint64_t>(len, 40));
    return rsp::Frame((off + piece.size() < xml.size() ? "m" : "l") + piece);
  }

  std::string Memory(const std::string& p) {
    uint64_t addr = 0, len = 0;
    if (std::sscanf(p.c_str() + 1, "%lx,%lx", &addr, &len) != 2) return rsp::Frame("E01");
    if (addr + len > memory_.size()) return rsp::Frame("E14");
    if (p[0] == 'm') {
      ++reads_;
      return rsp::Frame(rsp::ToHex(memory_.substr(addr, len)));
    }
    auto bytes = rsp::FromHex(p.substr(p.find(':') + 1));
    if (!bytes || bytes->size() != len) return rsp::Frame("E02");
    memory_.replace(addr, len, *bytes);
    return rsp::Frame("OK");
  }

  const bool phys_mode_;
  const std::string mtree_;
  const StubArch arch_;
  std::mutex mu_;
  std::string memory_;
  std::string thread_ = "01";
  std::atomic<bool> running_{false};
  std::atomic<bool> silent_{false};
  std::atomic<int> reads_{0};
  std::unique_ptr<FakeStub> stub_;
};

std::unique_ptr<Driver> Open(QemuLikeStub& fake, bool writable = false) {
  auto d = OpenGdbRemote(fake.Client(), kRam, OpenOptions{writable});
  EXPECT_TRUE(d) << d.error().ToString();
  return d ? std::move(*d) : nullptr;
}

TEST(GdbDriverTest, OpensAndResumesAVmThatRan) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind(), "gdb");
  EXPECT_TRUE(d->live());
  EXPECT_EQ(d->vcpu_count(), 2u);
  ASSERT_EQ(d->ranges().size(), 1u);
  EXPECT_EQ(d->ranges()[0], (PhysRange{0, kRam}));
  EXPECT_EQ(d->State(), RunState::kRunning);
  EXPECT_TRUE(fake.running());
}

TEST(GdbDriverTest, ReadWhileRunningStopsReadsAndResumes) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  std::string buf(1000, '\0');  // several 128-byte chunks (PacketSize=0x100)
  ASSERT_TRUE(d->ReadPhys(0x123, std::as_writable_bytes(std::span(buf))).ok());
  EXPECT_EQ(buf, fake.memory(0x123, 1000));
  EXPECT_EQ(fake.reads(), 8);
  EXPECT_TRUE(fake.running());
  EXPECT_EQ(d->State(), RunState::kRunning);
}

// A batch of reads stops the VM once, not for every read, and continues it at the end; a
// pause asked for meanwhile outlasts the batch.
TEST(GdbDriverTest, ABatchHoldsTheVmStillOnce) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  ASSERT_TRUE(fake.running());
  EXPECT_TRUE(d->BeginBatch());
  EXPECT_FALSE(fake.running());
  EXPECT_TRUE(d->BeginBatch());  // nested
  std::byte b[16];
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(d->ReadPhys(0x1000 * i, b).ok());
  EXPECT_FALSE(fake.running());
  d->EndBatch();
  EXPECT_FALSE(fake.running());  // the outer batch still holds it
  d->EndBatch();
  EXPECT_TRUE(fake.running());

  EXPECT_TRUE(d->BeginBatch());
  ASSERT_TRUE(d->Pause().ok());
  d->EndBatch();
  EXPECT_FALSE(fake.running());  // paused by the user: stays paused
  EXPECT_EQ(d->State(), RunState::kPaused);
  EXPECT_FALSE(d->BeginBatch());  // paused by the user, not held by the batch
  d->EndBatch();
  EXPECT_FALSE(fake.running());
}

TEST(GdbDriverTest, ReadOutsideRamIsAFault) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  std::byte b[16];
  Status s = d->ReadPhys(kRam - 8, b);
  EXPECT_EQ(s.code(), ErrorCode::kFault);
  EXPECT_EQ(s.address(), kRam);
  EXPECT_EQ(fake.reads(), 0);
}

TEST(GdbDriverTest, PauseAndResume) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->Pause().ok());
  EXPECT_EQ(d->State(), RunState::kPaused);
  EXPECT_FALSE(fake.running());
  std::byte b[4];
  ASSERT_TRUE(d->ReadPhys(0, b).ok());
  EXPECT_FALSE(fake.running());  // a read while paused does not resume
  ASSERT_TRUE(d->Pause().ok());  // idempotent
  ASSERT_TRUE(d->Resume().ok());
  EXPECT_EQ(d->State(), RunState::kRunning);
  EXPECT_TRUE(fake.running());
}

TEST(GdbDriverTest, StopBySomeoneElseIsNoticed) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  fake.StopExternally();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(d->State(), RunState::kPaused);
}

TEST(GdbDriverTest, RegistersPerVcpu) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  auto r0 = d->Registers(0);
  ASSERT_TRUE(r0) << r0.error().ToString();
  EXPECT_EQ(r0->Get(Register::kCr3), 0x1000u);
  EXPECT_EQ(r0->Get(Register::kRip), 0xffffffff81000000u);
  EXPECT_EQ(r0->Get(Register::kRflags), 0x246u);
  EXPECT_EQ(r0->Get(Register::kCs), 0x10u);
  EXPECT_EQ(r0->Get(Register::kGsBase), 0xffff888000000000u);
  EXPECT_EQ(r0->Get(Register::kCr4), 0x6b0u);
  EXPECT_EQ(r0->Get(Register::kEfer), 0xd01u);
  EXPECT_FALSE(r0->Has(Register::kGdtrBase));
  auto r1 = d->Registers(1);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->Get(Register::kCr3), 0x2000u);
  EXPECT_EQ(d->Registers(2).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(fake.running());
}

// qemu-system-i386's stub, told apart by its target.xml: eip, cr3 and the rest at their 4-byte
// places, nothing of x86_64's layout read into them.
TEST(GdbDriverTest, I386StubRegistersFromItsOwnLayout) {
  QemuLikeStub fake(true, "", StubArch::kI386);
  auto d = Open(fake);
  ASSERT_TRUE(d);
  auto r0 = d->Registers(0);
  ASSERT_TRUE(r0) << r0.error().ToString();
  EXPECT_EQ(r0->Get(Register::kRax), 0x1111u);
  EXPECT_EQ(r0->Get(Register::kRcx), 0x2222u);
  EXPECT_EQ(r0->Get(Register::kRbx), 0x4444u);
  EXPECT_EQ(r0->Get(Register::kRsp), 0xc5c93f28u);
  EXPECT_EQ(r0->Get(Register::kRip), 0xc992fcf3u);
  EXPECT_EQ(r0->Get(Register::kRflags), 0x200206u);
  EXPECT_EQ(r0->Get(Register::kCs), 0x60u);
  EXPECT_EQ(r0->Get(Register::kFsBase), 0xf5c3b000u);
  EXPECT_EQ(r0->Get(Register::kCr0), 0x80050033u);
  EXPECT_EQ(r0->Get(Register::kCr3), 0x1c65c20u);
  EXPECT_EQ(r0->Get(Register::kCr4), 0x350ef0u);
  EXPECT_EQ(r0->Get(Register::kEfer), 0x800u);
  EXPECT_FALSE(r0->Has(Register::kR8));
  EXPECT_FALSE(r0->Has(Register::kKernelGsBase));
  EXPECT_EQ(d->Registers(1)->Get(Register::kCr3), 0x2020u);
  bool said = false;
  for (const Fact& f : d->Describe()) said |= f.key == "architecture" && f.value == "i386";
  EXPECT_TRUE(said);
  EXPECT_TRUE(fake.running());
}

TEST(GdbDriverTest, X86_64TargetXmlKeepsThe64BitLayout) {
  QemuLikeStub fake(true, "", StubArch::kX86_64);
  auto d = Open(fake);
  ASSERT_TRUE(d);
  auto r0 = d->Registers(0);
  ASSERT_TRUE(r0);
  EXPECT_EQ(r0->Get(Register::kRip), 0xffffffff81000000u);
  EXPECT_EQ(r0->Get(Register::kCr3), 0x1000u);
}

TEST(GdbDriverTest, I386RegistersAreSetByTheirNumbersAndWidth) {
  QemuLikeStub fake(true, "", StubArch::kI386);
  auto d = Open(fake, /*writable=*/true);
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->SetRegister(0, Register::kRip, 0xc1000000).ok());
  const auto sent = fake.stub().packets();
  EXPECT_NE(std::find(sent.begin(), sent.end(), "P8=000000c1"), sent.end());  // eip is number 8
  EXPECT_EQ(d->SetRegister(0, Register::kRip, uint64_t{1} << 32).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(d->SetRegister(0, Register::kR8, 1).code(), ErrorCode::kUnsupported);
}

TEST(GdbDriverTest, AnotherArchitectureIsUnsupported) {
  QemuLikeStub fake(true, "", StubArch::kArm);
  auto d = OpenGdbRemote(fake.Client(), kRam, OpenOptions{});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(d.error().message().find("aarch64"), std::string::npos) << d.error().ToString();
}

TEST(GdbDriverTest, WritesOnlyWhenWritable) {
  QemuLikeStub fake;
  auto ro = Open(fake);
  ASSERT_TRUE(ro);
  const std::byte data[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  EXPECT_EQ(ro->WritePhys(0x10, data).code(), ErrorCode::kUnsupported);
  EXPECT_EQ(ro->SetRegister(0, Register::kRax, 1).code(), ErrorCode::kUnsupported);

  QemuLikeStub fake2;
  auto rw = Open(fake2, /*writable=*/true);
  ASSERT_TRUE(rw);
  ASSERT_TRUE(rw->WritePhys(0x10, data).ok());
  EXPECT_EQ(fake2.memory(0x10, 3), std::string("\x01\x02\x03"));
  ASSERT_TRUE(rw->SetRegister(1, Register::kCr3, 0x5000).ok());
  const auto packets = fake2.stub().packets();
  EXPECT_NE(std::find(packets.begin(), packets.end(), "P1d=0050000000000000"), packets.end());
  EXPECT_EQ(rw->SetRegister(0, Register::kGdtrBase, 1).code(), ErrorCode::kUnsupported);
}

TEST(GdbDriverTest, NoPhysicalModeIsUnsupported) {
  QemuLikeStub fake(/*phys_mode=*/false);
  auto d = OpenGdbRemote(fake.Client(), kRam, {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(d.error().message().find("PhyMemMode"), std::string::npos);
}

// The layout comes from qemu_layout's mtree parser, as for the qemu driver: RAM and ROM of the
// system address space (a PAM window's read-only view of RAM, the BIOS), adjacent pieces
// merged; I/O is left out, and so is ROM above the highest RAM (rom.h).
TEST(GdbDriverTest, RamIsProbedThroughTheMonitor) {
  const std::string mtree =
      "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"
      "  0000000000000000-000000000000bfff (prio 0, ram): ram\n"
      "  000000000000c000-000000000000cfff (prio 0, rom): ram @000000000000c000\n"
      "  000000000000d000-000000000000ffff (prio 0, ram): ram @000000000000d000\n"
      "  00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio\n"
      "  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n";
  QemuLikeStub fake(true, mtree);
  auto d = OpenGdbRemote(fake.Client(), std::nullopt, {});
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(std::vector<PhysRange>((*d)->ranges().begin(), (*d)->ranges().end()),
            (std::vector<PhysRange>{{0, 0x10000}}));
  EXPECT_EQ(std::vector<RomRange>((*d)->rom().begin(), (*d)->rom().end()),
            (std::vector<RomRange>{
                {0xc000, 0xd000, "info mtree -f: rom, region ram", true},
                {0xfffc0000, 0x100000000, "info mtree -f: rom, region pc.bios", false}}));
  bool probed = false;
  for (const Fact& f : (*d)->Describe()) {
    probed |= f.key == "ram-size" && f.value == "65536" && f.how.find("info mtree") == 0;
  }
  EXPECT_TRUE(probed);
}

TEST(GdbDriverTest, GarbledMonitorLayoutAsksForTheSize) {
  const std::string mtree =
      "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"
      "  0000000000000000-000000000000bfff (prio 0, ram): ram\n"
      "  0000000000008000-000000000000ffff (prio 0, ram): overlaps\n";
  QemuLikeStub fake(true, mtree);
  auto d = OpenGdbRemote(fake.Client(), std::nullopt, {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(d.error().message().find("overlapping"), std::string::npos) << d.error().ToString();
  EXPECT_NE(d.error().message().find("?ram="), std::string::npos);
}

TEST(GdbDriverTest, NoMonitorAndNoSizeFails) {
  QemuLikeStub fake;
  auto d = OpenGdbRemote(fake.Client(), std::nullopt, {});
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("?ram="), std::string::npos);
}

TEST(GdbDriverTest, StubGoneMeansGoneAndFastErrors) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  fake.stub().CloseStub();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(d->State(), RunState::kGone);
  const auto start = std::chrono::steady_clock::now();
  std::byte b[4];
  EXPECT_EQ(d->ReadPhys(0, b).code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->Registers(0).error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(d->Pause().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(100));
}

TEST(GdbDriverTest, HungStubTimesOutAsGone) {
  QemuLikeStub fake;
  auto d = OpenGdbRemote(fake.Client(milliseconds(200)), kRam, {});
  ASSERT_TRUE(d) << d.error().ToString();
  ASSERT_TRUE((*d)->Pause().ok());
  fake.GoSilent();  // acks, never answers
  std::byte b[4];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ((*d)->ReadPhys(0, b).code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  EXPECT_EQ((*d)->State(), RunState::kGone);
}

TEST(GdbDriverTest, ConcurrentReadsAreSerialized) {
  QemuLikeStub fake;
  auto d = Open(fake);
  ASSERT_TRUE(d);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const uint64_t pa = static_cast<uint64_t>((t * 977 + i * 131) % (kRam - 300));
        std::string buf(300, '\0');
        if (!d->ReadPhys(pa, std::as_writable_bytes(std::span(buf))).ok() ||
            buf != fake.memory(pa, 300)) {
          ++bad;
        }
        if (i % 10 == 0 && !d->Registers(t % 2)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(d->State(), RunState::kRunning);
  EXPECT_TRUE(fake.running());
}

TEST(GdbDriverTest, RegistryKnowsTheScheme) {
  auto d = OpenSource("gdb:unix:/nonexistent/vmemfs-gdb.sock?ram=1M", {});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kOs);
  EXPECT_NE(d.error().message().find("gdb:unix:/nonexistent"), std::string::npos);
  EXPECT_EQ(OpenSource("gdb:h:1?ram=12Q", {}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(GdbSpecTest, Parses) {
  auto a = ParseGdbSpec("localhost:1234");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->endpoint, "localhost:1234");
  EXPECT_FALSE(a->ram_size);
  auto b = ParseGdbSpec("unix:/tmp/g.sock?ram=256M");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->endpoint, "unix:/tmp/g.sock");
  EXPECT_EQ(b->ram_size, 256u << 20);
  EXPECT_EQ(ParseGdbSpec("h:1?ram=0x1000")->ram_size, 0x1000u);
  EXPECT_EQ(ParseGdbSpec("h:1?ram=4G")->ram_size, uint64_t{4} << 30);
  EXPECT_EQ(ParseGdbSpec("h:1?ram=256MiB")->ram_size, 256u << 20);
  EXPECT_EQ(ParseGdbSpec("h:1?ram=4096B")->ram_size, 4096u);
  EXPECT_FALSE(ParseGdbSpec("h:1?ram=12Q"));
  EXPECT_FALSE(ParseGdbSpec("h:1?ram=0"));
  EXPECT_FALSE(ParseGdbSpec("h:1?speed=3"));
  EXPECT_FALSE(ParseGdbSpec(""));
}

TEST(GdbSpecTest, Q35Layout) {
  EXPECT_EQ(Q35RamRanges(256u << 20), (std::vector<PhysRange>{{0, 256u << 20}}));
  const uint64_t g = uint64_t{1} << 30;
  EXPECT_EQ(Q35RamRanges(4 * g), (std::vector<PhysRange>{{0, 2 * g}, {4 * g, 6 * g}}));
}

TEST(GdbSpecTest, DecodeRejectsShortRegisterBlocks) {
  EXPECT_EQ(DecodeQemuX86Registers(std::string(100, '\0')).error().code(), ErrorCode::kBadData);
  EXPECT_EQ(DecodeQemuX86Registers(std::string(99, '\0'), GdbArch::kI386).error().code(),
            ErrorCode::kBadData);
  EXPECT_TRUE(DecodeQemuX86Registers(std::string(100, '\0'), GdbArch::kI386));
}

TEST(GdbSpecTest, ArchitectureFromTargetXml) {
  EXPECT_EQ(*GdbArchFromTargetXml("<target><architecture>i386</architecture></target>"),
            GdbArch::kI386);
  EXPECT_EQ(*GdbArchFromTargetXml("<target><architecture>i386:x86-64</architecture></target>"),
            GdbArch::kX86_64);
  EXPECT_EQ(*GdbArchFromTargetXml("<target></target>"), GdbArch::kX86_64);
  EXPECT_EQ(GdbArchFromTargetXml("<architecture>i386").error().code(), ErrorCode::kBadData);
  EXPECT_EQ(GdbArchFromTargetXml("<architecture>riscv:rv64</architecture>").error().code(),
            ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace vmemfs::drivers
