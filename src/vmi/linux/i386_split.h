// The i386 kernel's PAGE_OFFSET: a build option (arch/x86/Kconfig VMSPLIT_*), so whoever needs
// it from memory alone tries each choice. The whole kernel image and all lowmem sit in the
// direct map at PAGE_OFFSET + physical address (KASLR moves both by the same amount).
#ifndef VMEMFS_VMI_LINUX_I386_SPLIT_H_
#define VMEMFS_VMI_LINUX_I386_SPLIT_H_

#include <cstdint>

namespace vmemfs::vmi::linux_os {

// VMSPLIT_3G, 3G_OPT, 2G, 2G_OPT, 1G: the default first.
inline constexpr uint64_t kI386PageOffsets[] = {0xc0000000, 0xb0000000, 0x80000000, 0x78000000,
                                                0x40000000};
// The lowest of them: no i386 kernel-half address is below it.
inline constexpr uint64_t kI386LowestPageOffset = 0x40000000;

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_I386_SPLIT_H_
