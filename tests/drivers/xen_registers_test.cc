// Register conversion from Xen's vCPU records, built here as Xen would fill them.
#if VMEMFS_WITH_XEN
#include "drivers/xen_registers.h"

#include <gtest/gtest.h>

namespace vmemfs::drivers {
namespace {

TEST(XenRegistersTest, HvmCpuRecord) {
  struct hvm_hw_cpu cpu = {};
  cpu.rax = 1;
  cpu.r15 = 15;
  cpu.rip = 0xffffffff81000000;
  cpu.rflags = 0x246;
  cpu.cr0 = 0x80050033;
  cpu.cr2 = 0x7f0000001000;
  cpu.cr3 = 0x10a000;
  cpu.cr4 = 0x3506f0;
  cpu.msr_efer = 0xd01;
  cpu.cs_sel = 0x10;
  cpu.ss_sel = 0x18;
  cpu.fs_base = 0x7f00deadb000;
  cpu.gs_base = 0xffff88800f600000;
  cpu.shadow_gs = 0x7f00beef0000;
  cpu.gdtr_base = 0xfffffe0000001000;
  cpu.gdtr_limit = 0x7f;
  cpu.idtr_base = 0xfffffe0000000000;
  cpu.idtr_limit = 0xfff;
  RegisterSet r = RegistersFromHvmCpu(cpu);
  EXPECT_EQ(r.Get(Register::kRax), 1u);
  EXPECT_EQ(r.Get(Register::kR15), 15u);
  EXPECT_EQ(r.Get(Register::kRip), 0xffffffff81000000u);
  EXPECT_EQ(r.Get(Register::kRflags), 0x246u);
  EXPECT_EQ(r.Get(Register::kCr0), 0x80050033u);
  EXPECT_EQ(r.Get(Register::kCr2), 0x7f0000001000u);
  EXPECT_EQ(r.Get(Register::kCr3), 0x10a000u);
  EXPECT_EQ(r.Get(Register::kCr4), 0x3506f0u);
  EXPECT_EQ(r.Get(Register::kEfer), 0xd01u);
  EXPECT_EQ(r.Get(Register::kCs), 0x10u);
  EXPECT_EQ(r.Get(Register::kSs), 0x18u);
  EXPECT_EQ(r.Get(Register::kFsBase), 0x7f00deadb000u);
  EXPECT_EQ(r.Get(Register::kGsBase), 0xffff88800f600000u);
  EXPECT_EQ(r.Get(Register::kKernelGsBase), 0x7f00beef0000u);
  EXPECT_EQ(r.Get(Register::kGdtrBase), 0xfffffe0000001000u);
  EXPECT_EQ(r.Get(Register::kGdtrLimit), 0x7fu);
  EXPECT_EQ(r.Get(Register::kIdtrBase), 0xfffffe0000000000u);
  EXPECT_EQ(r.Get(Register::kIdtrLimit), 0xfffu);
  for (size_t i = 0; i < kRegisterCount; ++i) {
    EXPECT_TRUE(r.Has(static_cast<Register>(i))) << RegisterName(static_cast<Register>(i));
    EXPECT_FALSE(r.IsInferred(static_cast<Register>(i)));
  }
}

TEST(XenRegistersTest, PvContext) {
  vcpu_guest_context_x86_64_t c = {};
  c.user_regs.rax = 0xa;
  c.user_regs.rsp = 0xffffc90000003f00;
  c.user_regs.rip = 0xffffffff81001234;
  c.user_regs.rflags = 0x202;
  c.user_regs.cs = 0xe033;
  c.user_regs.ss = 0xe02b;
  c.fs_base = 0x1000;
  c.gs_base_kernel = 0xffff888000000000;
  c.gs_base_user = 0x2000;
  c.ctrlreg[0] = 0x8005003b;
  c.ctrlreg[2] = 0x42000;
  // Machine frame 0x12345 as Xen stores it for x86_64: xen_pfn_to_cr3(pfn) = pfn << 12.
  const uint64_t mfn = 0x12345;
  c.ctrlreg[3] = mfn << 12;
  c.ctrlreg[4] = 0x2660;
  RegisterSet r = RegistersFromPvContext(c);
  EXPECT_EQ(r.Get(Register::kRax), 0xau);
  EXPECT_EQ(r.Get(Register::kRsp), 0xffffc90000003f00u);
  EXPECT_EQ(r.Get(Register::kRip), 0xffffffff81001234u);
  EXPECT_EQ(r.Get(Register::kCs), 0xe033u);
  EXPECT_EQ(r.Get(Register::kSs), 0xe02bu);
  EXPECT_EQ(r.Get(Register::kGsBase), 0xffff888000000000u);
  EXPECT_EQ(r.Get(Register::kKernelGsBase), 0x2000u);
  EXPECT_EQ(r.Get(Register::kCr0), 0x8005003bu);
  EXPECT_EQ(r.Get(Register::kCr3), mfn << 12);
  EXPECT_EQ(r.Get(Register::kCr4), 0x2660u);
  // Xen does not give a PV guest's EFER or descriptor tables in this record.
  EXPECT_FALSE(r.Has(Register::kEfer));
  EXPECT_FALSE(r.Has(Register::kGdtrBase));
}

TEST(XenRegistersTest, PvCr3OfAFrameAbove4GiBOfFrames) {
  vcpu_guest_context_x86_64_t c = {};
  const uint64_t mfn = uint64_t{0x1234567890};  // a 52-bit machine address
  c.ctrlreg[3] = mfn << 12;
  EXPECT_EQ(RegistersFromPvContext(c).Get(Register::kCr3), mfn << 12);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_XEN
