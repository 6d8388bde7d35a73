// Parsers of QEMU monitor output, on text captured from the QEMU 7.2 that runs the test guests.
#include "drivers/qemu_layout.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace vmemfs::drivers {
namespace {

// Captured from QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18), -machine q35, -cpu qemu64, 2 vCPUs.
constexpr std::string_view kMtree =
    "FlatView #0\r\n"
    " AS \"I/O\", root: io\r\n"
    " Root memory region: io\r\n"
    "  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan\r\n"
    "  0000000000000008-000000000000000f (prio 0, i/o): dma-cont\r\n"
    "  0000000000000010-000000000000001f (prio 0, i/o): io @0000000000000010\r\n"
    "FlatView #1\r\n"
    " AS \"memory\", root: system\r\n"
    " AS \"cpu-memory-0\", root: system\r\n"
    " AS \"cpu-memory-1\", root: system\r\n"
    " AS \"ich9-ahci\", root: bus master container\r\n"
    " Root memory region: system\r\n"
    "  0000000000000000-00000000000bffff (prio 0, ram): ram\r\n"
    "  00000000000c0000-00000000000c0fff (prio 0, rom): ram @00000000000c0000\r\n"
    "  00000000000c1000-00000000000c3fff (prio 0, ram): ram @00000000000c1000\r\n"
    "  00000000000c4000-00000000000e7fff (prio 0, rom): ram @00000000000c4000\r\n"
    "  00000000000e8000-00000000000effff (prio 0, ram): ram @00000000000e8000\r\n"
    "  00000000000f0000-00000000000fffff (prio 0, rom): ram @00000000000f0000\r\n"
    "  0000000000100000-000000000fffffff (prio 0, ram): ram @0000000000100000\r\n"
    "  00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio\r\n"
    "  00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio\r\n"
    "  00000000febc0000-00000000febc004f (prio 0, i/o): msix-table\r\n"
    "  00000000febc2000-00000000febc2007 (prio 0, i/o): msix-pba\r\n"
    "  00000000febc4000-00000000febc4fff (prio 1, i/o): ahci\r\n"
    "  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\r\n"
    "  00000000fed00000-00000000fed003ff (prio 0, i/o): hpet\r\n"
    "  00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio\r\n"
    "  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi\r\n"
    "  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\r\n"
    "\r\n"
    "FlatView #2\r\n"
    " AS \"cpu-smm-0\", root: memory\r\n"
    " Root memory region: memory\r\n"
    "  0000000000000000-00000000000bffff (prio 0, ram): ram\r\n"
    "  00000000000c0000-00000000000c0fff (prio 0, rom): ram @00000000000c0000\r\n"
    "  00000000000c1000-00000000000c3fff (prio 0, ram): ram @00000000000c1000\r\n"
    "  00000000000c4000-00000000000e7fff (prio 0, rom): ram @00000000000c4000\r\n"
    "  00000000000e8000-00000000000effff (prio 0, ram): ram @00000000000e8000\r\n"
    "  00000000000f0000-00000000000fffff (prio 0, rom): ram @00000000000f0000\r\n"
    "  0000000000100000-000000000fffffff (prio 0, ram): ram @0000000000100000\r\n"
    "  00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio\r\n"
    "  00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio\r\n"
    "  00000000febc0000-00000000febc004f (prio 0, i/o): msix-table\r\n"
    "  00000000febc2000-00000000febc2007 (prio 0, i/o): msix-pba\r\n"
    "  00000000febc4000-00000000febc4fff (prio 1, i/o): ahci\r\n"
    "  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\r\n"
    "  00000000fed00000-00000000fed003ff (prio 0, i/o): hpet\r\n"
    "  00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio\r\n"
    "  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi\r\n"
    "  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\r\n"
    "\r\n"
    "FlatView #3";

// Captured from QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18), -machine q35, -cpu qemu64, 2 vCPUs.
constexpr std::string_view kRegistersAll =
    "\r\n"
    "CPU#0\r\n"
    "RAX=000000000001ad40 RBX=0000000000000000 RCX=7ffffff59bf6c2ff RDX=4000000000000000\r\n"
    "RSI=0000000000000000 RDI=000000000003d224 RBP=ffffffffbe21aa40 RSP=ffffffffbe203e98\r\n"
    "R8 =0000000000000000 R9 =00000000313b1136 R10=00000000fffffffb R11=0000000000000001\r\n"
    "R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000014790\r\n"
    "RIP=ffffffffbd217a0b RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
    "ES =0000 0000000000000000 00000000 00000000\r\n"
    "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\r\n"
    "SS =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
    "DS =0000 0000000000000000 00000000 00000000\r\n"
    "FS =0000 0000000000000000 00000000 00000000\r\n"
    "GS =0000 ffff89c64f600000 00000000 00000000\r\n"
    "LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT\r\n"
    "TR =0040 fffffe0000003000 00004087 00008900 DPL=0 TSS64-avl\r\n"
    "GDT=     fffffe0000001000 0000007f\r\n"
    "IDT=     fffffe0000000000 00000fff\r\n"
    "CR0=80050033 CR2=0000000015c3a730 CR3=0000000002944000 CR4=000006b0\r\n"
    "DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 \r\n"
    "DR6=00000000ffff0ff0 DR7=0000000000000400\r\n"
    "EFER=0000000000000d01\r\n"
    "FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80\r\n"
    "\r\n"
    "CPU#1\r\n"
    "RAX=000000000001ad40 RBX=0000000000000000 RCX=0000000000000000 RDX=4000000000000000\r\n"
    "RSI=0000000000000083 RDI=000000000008d6e4 RBP=ffff89c641264800 RSP=ffffd2fd4009bed8\r\n"
    "R8 =0000000000000000 R9 =00000000313b1136 R10=00000000fffffffb R11=0000000000000001\r\n"
    "R12=0000000000000001 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000\r\n"
    "RIP=ffffffffbd217a0b RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
    "ES =0000 0000000000000000 00000000 00000000\r\n"
    "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\r\n"
    "SS =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
    "DS =0000 0000000000000000 00000000 00000000\r\n"
    "FS =0000 0000000000000000 00000000 00000000\r\n"
    "GS =0000 ffff89c64f700000 00000000 00000000\r\n"
    "LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT\r\n"
    "TR =0040 fffffe000003e000 00004087 00008900 DPL=0 TSS64-avl\r\n"
    "GDT=     fffffe000003c000 0000007f\r\n"
    "IDT=     fffffe0000000000 00000fff\r\n"
    "CR0=80050033 CR2=00000000005794a9 CR3=0000000001f56000 CR4=000006a0\r\n"
    "DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 \r\n"
    "DR6=00000000ffff0ff0 DR7=0000000000000400\r\n"
    "EFER=0000000000000d01\r\n"
    "FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80\r\n"
    "\r\n";

// Captured from QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18), -machine q35, -cpu qemu64, 2 vCPUs.
constexpr std::string_view kGpa2Hva =
    "Host virtual address for 0x0 (ram) is 0x7f39c3fff000\r\n"
    "Host virtual address for 0x1000 (ram) is 0x7f39c4000000\r\n"
    "Host virtual address for 0xfffffff (ram) is 0x7f39d3ffefff\r\n"
    "No memory is mapped at address 0x10000000\r\n";

TEST(QemuLayoutTest, MtreeGivesRamAndRomOfSystemMemoryOnly) {
  Result<std::vector<MtreeRange>> r = ParseMtreeMemory(kMtree);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 8u);  // 7 pieces of "ram" (PAM shadows as rom) + pc.bios; no i/o
  EXPECT_EQ((*r)[0], (MtreeRange{0, 0xc0000, "ram", 0, false}));
  EXPECT_EQ((*r)[1], (MtreeRange{0xc0000, 0xc1000, "ram", 0xc0000, true}));
  EXPECT_EQ((*r)[6], (MtreeRange{0x100000, 0x10000000, "ram", 0x100000, false}));
  EXPECT_EQ((*r)[7], (MtreeRange{0xfffc0000, 0x100000000, "pc.bios", 0, true}));
}

TEST(QemuLayoutTest, MtreeToleratesKvmSuffixAndRejectsGarbage) {
  const std::string kvm =
      "FlatView #1\r\n AS \"memory\", root: system\r\n Root memory region: system\r\n"
      "  0000000000000000-000000000009ffff (prio 0, ram): pc.ram KVM\r\n"
      "  0000000000100000-00000000bfffffff (prio 0, ram): pc.ram @0000000000100000 KVM\r\n";
  Result<std::vector<MtreeRange>> r = ParseMtreeMemory(kvm);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1], (MtreeRange{0x100000, 0xc0000000, "pc.ram", 0x100000, false}));

  EXPECT_FALSE(ParseMtreeMemory(""));
  EXPECT_FALSE(ParseMtreeMemory("FlatView #0\n AS \"I/O\", root: io\n"));
  const std::string prefix = "FlatView #1\n AS \"memory\", root: system\n Root memory region: x\n";
  EXPECT_FALSE(ParseMtreeMemory(prefix + "  zz-10 (prio 0, ram): ram\n"));
  EXPECT_FALSE(ParseMtreeMemory(prefix + "  0000000000000010-0000000000000001 (prio 0, ram): r\n"));
  EXPECT_FALSE(ParseMtreeMemory(prefix + "  0-ffffffffffffffff (prio 0, ram): r\n"));  // end wraps
  EXPECT_FALSE(
      ParseMtreeMemory(prefix + "  0-fff (prio 0, ram): r\n  800-1fff (prio 0, ram): r\n"));
  EXPECT_FALSE(ParseMtreeMemory(prefix + "  0-fff (prio 0, ram): r @xyz\n"));
  EXPECT_FALSE(ParseMtreeMemory(prefix + "  0-fff (prio 0 ram)\n"));
}

TEST(QemuLayoutTest, Gpa2Hva) {
  const std::string_view first = kGpa2Hva.substr(0, kGpa2Hva.find('\n') + 1);
  Result<uint64_t> hva = ParseGpa2Hva(first, 0);
  ASSERT_TRUE(hva) << hva.error().ToString();
  EXPECT_EQ(*hva, 0x7f39c3fff000u);
  // The captured answer for 0x10000000 (just past RAM) is QEMU's refusal.
  const std::string_view last = kGpa2Hva.substr(kGpa2Hva.rfind("No memory"));
  Result<uint64_t> none = ParseGpa2Hva(last, 0x10000000);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kFault);
  EXPECT_FALSE(ParseGpa2Hva(first, 0x1000));  // answer for another address
  EXPECT_FALSE(ParseGpa2Hva("Host virtual address for 0x0 (ram) is 0xzz", 0));
  EXPECT_FALSE(ParseGpa2Hva("", 0));
}

TEST(QemuLayoutTest, InfoRegistersAll) {
  Result<std::vector<RegisterSet>> cpus = ParseInfoRegistersAll(kRegistersAll);
  ASSERT_TRUE(cpus) << cpus.error().ToString();
  ASSERT_EQ(cpus->size(), 2u);
  const RegisterSet& c0 = (*cpus)[0];
  EXPECT_EQ(c0.Get(Register::kRax), 0x1ad40u);
  EXPECT_EQ(c0.Get(Register::kRcx), 0x7ffffff59bf6c2ffu);
  EXPECT_EQ(c0.Get(Register::kR9), 0x313b1136u);
  EXPECT_EQ(c0.Get(Register::kR15), 0x14790u);
  EXPECT_EQ(c0.Get(Register::kRip), 0xffffffffbd217a0bu);
  EXPECT_EQ(c0.Get(Register::kRflags), 0x246u);
  EXPECT_EQ(c0.Get(Register::kCs), 0x10u);
  EXPECT_EQ(c0.Get(Register::kSs), 0x18u);
  EXPECT_EQ(c0.Get(Register::kGsBase), 0xffff89c64f600000u);
  EXPECT_EQ(c0.Get(Register::kFsBase), 0u);
  EXPECT_EQ(c0.Get(Register::kGdtrBase), 0xfffffe0000001000u);
  EXPECT_EQ(c0.Get(Register::kGdtrLimit), 0x7fu);
  EXPECT_EQ(c0.Get(Register::kIdtrLimit), 0xfffu);
  EXPECT_EQ(c0.Get(Register::kCr0), 0x80050033u);
  EXPECT_EQ(c0.Get(Register::kCr3), 0x2944000u);
  EXPECT_EQ(c0.Get(Register::kCr4), 0x6b0u);
  EXPECT_EQ(c0.Get(Register::kEfer), 0xd01u);
  EXPECT_FALSE(c0.Has(Register::kKernelGsBase));  // QEMU does not print it
  EXPECT_EQ((*cpus)[1].Get(Register::kGsBase), 0xffff89c64f700000u);
  EXPECT_EQ((*cpus)[1].Get(Register::kGdtrBase), 0xfffffe000003c000u);
}

TEST(QemuLayoutTest, InfoRegistersRejectsGarbage) {
  EXPECT_FALSE(ParseInfoRegistersAll(""));
  EXPECT_FALSE(ParseInfoRegistersAll("CPU#x\nRIP=0 CR3=0\n"));
  EXPECT_FALSE(ParseInfoRegistersAll("CPU#99999\nRIP=0 CR3=0\n"));
  EXPECT_FALSE(ParseInfoRegistersAll("CPU#0\nRAX=12345678901234567\nRIP=0 CR3=0\n"));
  EXPECT_FALSE(ParseInfoRegistersAll("CPU#0\nRAX=1\n"));  // no RIP, CR3
  EXPECT_FALSE(ParseInfoRegistersAll("CPU#0\nRIP=0 CR3=0\nCS =\n"));
  EXPECT_TRUE(ParseInfoRegistersAll("CPU#0\nEIP=0000fff0 EFL=2\nCR3=0\n"));  // real mode
}

TEST(QemuLayoutTest, QmpAnswers) {
  // The return members QEMU 7.2 sent for query-status, query-cpus-fast and query-kvm.
  EXPECT_EQ(*ParseQueryStatus(R"({"status": "running", "singlestep": false, "running": true})"),
            RunState::kRunning);
  EXPECT_EQ(*ParseQueryStatus(R"({"status": "paused", "singlestep": false, "running": false})"),
            RunState::kPaused);
  Result<std::vector<int64_t>> threads = ParseCpuThreads(
      R"([{"thread-id": 17933, "props": {"core-id": 0, "thread-id": 0, "socket-id": 0},)"
      R"( "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"},)"
      R"( {"thread-id": 17934, "props": {"core-id": 1, "thread-id": 0, "socket-id": 0},)"
      R"( "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"}])");
  ASSERT_TRUE(threads) << threads.error().ToString();
  EXPECT_EQ(*threads, (std::vector<int64_t>{17933, 17934}));
  EXPECT_EQ(*ParseAccel(R"({"enabled": false, "present": true})"), "tcg");
  EXPECT_EQ(*ParseAccel(R"({"enabled": true, "present": true})"), "kvm");

  EXPECT_FALSE(ParseQueryStatus("{"));
  EXPECT_FALSE(ParseQueryStatus(R"({"running": "yes"})"));
  EXPECT_FALSE(ParseCpuThreads("[]"));
  EXPECT_FALSE(ParseCpuThreads(R"([{"cpu-index": 5, "thread-id": 1}])"));
  EXPECT_FALSE(ParseCpuThreads(R"([{"cpu-index": 0}])"));
  EXPECT_FALSE(ParseAccel("42"));
}

}  // namespace
}  // namespace vmemfs::drivers
