// Where a running 32-bit x86 (i386) Linux kernel is, from its VMCOREINFO alone.
//
// An i386 kernel's VMCOREINFO has no phys_base, KERNELOFFSET or init_top_pgt (those come from
// arch/x86/kernel/machine_kexec_64.c); machine_kexec_32.c adds only CONFIG_X86_PAE=y on PAE
// kernels. What holds instead: the i386 kernel image lives in the lowmem direct map, so every
// image address is PAGE_OFFSET + its physical address, KASLR included (the 32-bit kernel moves
// virtually and physically by the same amount). PAGE_OFFSET is a build option (VMSPLIT_*), so
// the known splits are tried and the one that makes swapper_pg_dir translate SYMBOL(_stext)
// to _stext - PAGE_OFFSET is taken.
#ifndef VMEMFS_VMI_LINUX_KERNEL_LAYOUT_I386_H_
#define VMEMFS_VMI_LINUX_KERNEL_LAYOUT_I386_H_

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/vmcoreinfo.h"

namespace vmemfs::vmi::linux_os {

// True when the note describes a 32-bit kernel: no x86_64-only entries (NUMBER(phys_base),
// SYMBOL(init_top_pgt)) and _stext below 4 GiB.
bool IsI386VmcoreInfo(const VmcoreInfo& info);

// The layout of such a kernel (pointer_size 4, mode kPae or kLegacy32 from CONFIG_X86_PAE).
// `register_roots` are tried when swapper_pg_dir does not verify at any split.
// Errors: kNotFound when _stext or swapper_pg_dir is missing; kBadData when no root verifies.
Result<KernelLayout> FindI386KernelLayout(Guest& guest, const VmcoreInfo& info,
                                          std::span<const RootCandidate> register_roots);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_LAYOUT_I386_H_
