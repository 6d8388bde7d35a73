// Xen's vCPU state as vmemfs registers: HVM guests' `struct hvm_hw_cpu` (the CPU record of the
// HVM save format, xc_domain_hvm_getcontext_partial) and PV guests' x86_64 vcpu_guest_context
// (xc_vcpu_getcontext).
//
// PV guests differ: the context has no EFER and no descriptor-table bases, and their CR3 holds
// a machine frame (xen_pfn_to_cr3), not a guest-physical page: vmemfs reports it as is, so page
// walks of PV guests are not meaningful (their page tables hold machine frames too). Only
// 64-bit contexts are converted. Pure functions.
#ifndef VMEMFS_DRIVERS_XEN_REGISTERS_H_
#define VMEMFS_DRIVERS_XEN_REGISTERS_H_

// Xen's public headers refuse strict ISO mode (they use anonymous structs, which g++ and clang
// accept in C++ anyway); the project compiles with -std=c++20, so hide __STRICT_ANSI__ from
// them only. xenctrl.h must come first: the save-format header needs its types. The headers
// declare C functions without extern "C" guards of their own.
#pragma push_macro("__STRICT_ANSI__")
#undef __STRICT_ANSI__
extern "C" {
// clang-format off
#include <xenctrl.h>
#include <xen/hvm/save.h>
// clang-format on
}
#pragma pop_macro("__STRICT_ANSI__")

#include "drivers/registers.h"

namespace vmemfs::drivers {

RegisterSet RegistersFromHvmCpu(const struct hvm_hw_cpu& cpu);
RegisterSet RegistersFromPvContext(const vcpu_guest_context_x86_64_t& context);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_XEN_REGISTERS_H_
