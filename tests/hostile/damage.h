// Copies of a test guest's ELF core, damaged in place: where a kernel object lies in the file
// is found from the guest's own data (VMCOREINFO in the core, truth/kallsyms.txt) and from an
// undamaged mount's kmem, never hard-coded.
#ifndef VMEMFS_TESTS_HOSTILE_DAMAGE_H_
#define VMEMFS_TESTS_HOSTILE_DAMAGE_H_

#include <cstdint>
#include <optional>
#include <string>

namespace vmemfs::testing {

// The guest's core.elf, read once per process.
const std::string& CoreBytes(const std::string& guest);
// SYMBOL(name) from the core's VMCOREINFO note, or nullopt.
std::optional<uint64_t> VmcoreinfoSymbol(const std::string& guest, const std::string& name);
// The file offset in core.elf of the guest's kernel virtual address `va`: the page there is
// read through `kmem` of an undamaged mount and looked for in the core (it must occur once).
std::optional<uint64_t> CoreOffsetOfKernelVa(const std::string& guest, const std::string& kmem,
                                             uint64_t va);
// kmem's file offset for `va` (the address modulo the address-space size).
uint64_t KmemOffset(const std::string& guest, uint64_t va);

// Copies the guest's core.elf to `path` (returns false on failure).
bool CopyCore(const std::string& guest, const std::string& path);
// Overwrites `bytes` at `offset` in `path`.
bool Patch(const std::string& path, uint64_t offset, const std::string& bytes);
// `n` pseudo-random bytes, the same for the same seed.
std::string Noise(size_t n, uint32_t seed);

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_HOSTILE_DAMAGE_H_
