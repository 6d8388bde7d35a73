// Typed, bounded reads of kernel virtual memory for the OS walkers.
#ifndef VMEMFS_VMI_LINUX_KERNEL_MEMORY_H_
#define VMEMFS_VMI_LINUX_KERNEL_MEMORY_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "vmi/guest.h"

namespace vmemfs::vmi::linux_os {

// Reads through one kernel's page tables (`kernel`), or a process's (ReadUser).
// Thread-safe as Guest is.
class KernelMemory {
 public:
  // pointer_size: the kernel's (KernelLayout::pointer_size), 8 or 4.
  KernelMemory(Guest& guest, AddressSpace kernel, uint64_t pointer_size = 8)
      : guest_(guest), kernel_(kernel), pointer_size_(pointer_size) {}
  Guest& guest() { return guest_; }
  const AddressSpace& kernel() const { return kernel_; }
  uint64_t pointer_size() const { return pointer_size_; }

  Result<uint64_t> U64(uint64_t va);
  // A kernel pointer (or unsigned long): pointer_size() bytes, zero-extended.
  Result<uint64_t> Pointer(uint64_t va) { return Unsigned(va, pointer_size_); }
  Result<uint32_t> U32(uint64_t va);
  Result<int32_t> S32(uint64_t va);
  // An unsigned integer of 1, 2, 4 or 8 bytes (member sizes from BTF).
  Result<uint64_t> Unsigned(uint64_t va, uint64_t size);
  // A NUL-terminated string of at most max_len bytes (the NUL not included); a string that
  // does not end within max_len is cut there.
  Result<std::string> String(uint64_t va, size_t max_len);
  Status Read(uint64_t va, std::span<std::byte> out) {
    return guest_.ReadVirtual(kernel_, va, out);
  }
  // Read for searches, where a fault is an answer (nothing mapped there: false) and anything
  // else (a vanished VM) is an error.
  Result<bool> ReadIfMapped(uint64_t va, std::span<std::byte> out) {
    Status s = Read(va, out);
    if (s.ok()) return true;
    if (s.code() == ErrorCode::kFault) return false;
    return s;
  }
  // The physical address of kernel virtual address `va` (vmi_translate_kv2p).
  Result<uint64_t> Translate(uint64_t va) {
    VMEMFS_ASSIGN_OR_RETURN(Mapping m, guest_.Translate(kernel_, va));
    return m.pa + (va - m.va);
  }
  // Reads through a process's page tables (same paging mode as the kernel's).
  Status ReadUser(uint64_t root, uint64_t va, std::span<std::byte> out) {
    return guest_.ReadVirtual({kernel_.mode, root}, va, out);
  }

 private:
  Guest& guest_;
  const AddressSpace kernel_;
  const uint64_t pointer_size_;
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_MEMORY_H_
