// The Volatility 3 ISF of one running kernel, made from its memory (isf_writer.h says what is
// in it): the BTF is read again for it (the bytes are not kept after the types are found:
// 4-6 MiB per VM for a file most users never read) and so is the kernel's `linux_banner`.
#ifndef VMEMFS_VMI_LINUX_KERNEL_ISF_H_
#define VMEMFS_VMI_LINUX_KERNEL_ISF_H_

#include <string>

#include "base/status.h"
#include "vmi/linux/isf_writer.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

// Longest banner read: Linux's is about 150 bytes (release, compiler, build host and date).
inline constexpr size_t kMaxBannerBytes = 1024;

// True when the kernel has what an ISF is made from (BTF between __start_BTF and __stop_BTF).
bool CanMakeKernelIsf(const SymbolTable& symbols);

// The file's name: "<OSRELEASE>.json" ('/' in a release becomes '_').
std::string KernelIsfName(const VmcoreInfo& info);

// Errors: kNotFound without BTF; kBadData for an implausible or rejected BTF; read errors.
Result<IsfOutput> MakeKernelIsf(KernelMemory& memory, const SymbolTable& symbols,
                                const VmcoreInfo& info, const IsfLimits& limits = {});

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_ISF_H_
