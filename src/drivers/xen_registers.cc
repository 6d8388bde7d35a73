#include "drivers/xen_registers.h"

namespace vmemfs::drivers {

RegisterSet RegistersFromHvmCpu(const struct hvm_hw_cpu& c) {
  RegisterSet r;
  const std::pair<Register, uint64_t> values[] = {
      {Register::kRax, c.rax},
      {Register::kRbx, c.rbx},
      {Register::kRcx, c.rcx},
      {Register::kRdx, c.rdx},
      {Register::kRsi, c.rsi},
      {Register::kRdi, c.rdi},
      {Register::kRbp, c.rbp},
      {Register::kRsp, c.rsp},
      {Register::kR8, c.r8},
      {Register::kR9, c.r9},
      {Register::kR10, c.r10},
      {Register::kR11, c.r11},
      {Register::kR12, c.r12},
      {Register::kR13, c.r13},
      {Register::kR14, c.r14},
      {Register::kR15, c.r15},
      {Register::kRip, c.rip},
      {Register::kRflags, c.rflags},
      {Register::kCs, c.cs_sel},
      {Register::kSs, c.ss_sel},
      {Register::kDs, c.ds_sel},
      {Register::kEs, c.es_sel},
      {Register::kFs, c.fs_sel},
      {Register::kGs, c.gs_sel},
      {Register::kFsBase, c.fs_base},
      {Register::kGsBase, c.gs_base},
      // SWAPGS's other half: the MSR_KERNEL_GS_BASE value Xen saves as shadow_gs.
      {Register::kKernelGsBase, c.shadow_gs},
      {Register::kCr0, c.cr0},
      {Register::kCr2, c.cr2},
      {Register::kCr3, c.cr3},
      {Register::kCr4, c.cr4},
      {Register::kEfer, c.msr_efer},
      {Register::kGdtrBase, c.gdtr_base},
      {Register::kGdtrLimit, c.gdtr_limit},
      {Register::kIdtrBase, c.idtr_base},
      {Register::kIdtrLimit, c.idtr_limit},
  };
  for (const auto& [reg, value] : values) r.Set(reg, value);
  return r;
}

RegisterSet RegistersFromPvContext(const vcpu_guest_context_x86_64_t& c) {
  RegisterSet r;
  const cpu_user_regs_x86_64_t& u = c.user_regs;
  const std::pair<Register, uint64_t> values[] = {
      {Register::kRax, u.rax},
      {Register::kRbx, u.rbx},
      {Register::kRcx, u.rcx},
      {Register::kRdx, u.rdx},
      {Register::kRsi, u.rsi},
      {Register::kRdi, u.rdi},
      {Register::kRbp, u.rbp},
      {Register::kRsp, u.rsp},
      {Register::kR8, u.r8},
      {Register::kR9, u.r9},
      {Register::kR10, u.r10},
      {Register::kR11, u.r11},
      {Register::kR12, u.r12},
      {Register::kR13, u.r13},
      {Register::kR14, u.r14},
      {Register::kR15, u.r15},
      {Register::kRip, u.rip},
      {Register::kRflags, u.rflags},
      {Register::kCs, u.cs},
      {Register::kSs, u.ss},
      {Register::kDs, u.ds},
      {Register::kEs, u.es},
      {Register::kFs, u.fs},
      {Register::kGs, u.gs},
      {Register::kFsBase, c.fs_base},
      // A PV kernel runs with the kernel GS base loaded; the user one is the swapped-out half.
      {Register::kGsBase, c.gs_base_kernel},
      {Register::kKernelGsBase, c.gs_base_user},
      {Register::kCr0, c.ctrlreg[0]},
      {Register::kCr2, c.ctrlreg[2]},
      // x86_64 stores the frame plainly (xen_pfn_to_cr3_x86_64 is pfn << 12; only 32-bit PAE
      // guests rotate it), so the value is the machine address of the top page table.
      {Register::kCr3, c.ctrlreg[3]},
      {Register::kCr4, c.ctrlreg[4]},
  };
  for (const auto& [reg, value] : values) r.Set(reg, value);
  return r;
}

}  // namespace vmemfs::drivers
