// Writes a Volatility 3 ISF (intermediate symbol format, JSON, format 6.2.0) for one running
// kernel from what the kernel itself carries: its BTF (every struct, union, enum and base
// type) and its kallsyms (every core-kernel symbol), so Volatility needs no debug package and
// no dwarf2json run. isf.h reads the same format.
//
// What Volatility expects and gets here:
// - symbols at link-time addresses: kernel-half addresses minus the KASLR offset, per-cpu
//   offsets (small numbers) as they are; Volatility finds the slide itself;
// - `linux_banner` with `constant_data` = the banner bytes the kernel has in memory (with
//   their NUL): Volatility finds the ISF for a memory image by scanning for this string;
// - types for the global variables its plugins dereference (init_task, modules, ...): BTF
//   describes only per-cpu variables, so the others come from a short table of well-known
//   kernel declarations, used only when BTF has the type;
// - typedefs resolved (ISF has none), except that an anonymous struct, union or enum is named
//   after its typedef (atomic_t, kuid_t, ...); other anonymous ones are "unnamed_<id>" and are
//   members "unnamed_field_<n>" with "anonymous": true; a second type of an already taken
//   name is "<name>_btf<id>".
//
// The BTF is the guest's, hence hostile: libbpf validates it, type chains are followed at
// most kMaxChain deep, and the output is capped (IsfLimits): types past the type cap are
// written as void, and past the byte cap no more enums, types or symbols are written. Each
// cap that bites adds a note to IsfOutput::notes and to the file's metadata.producer.notes
// (the schema leaves the producer open); the JSON stays valid either way.
#ifndef VMEMFS_VMI_LINUX_ISF_WRITER_H_
#define VMEMFS_VMI_LINUX_ISF_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

struct IsfLimits {
  // BTF type ids looked at; Debian's 6.1 cloud kernel has 95,246.
  uint32_t max_types = 1'000'000;
  // Output size after which no more entries are started; that kernel's ISF is 10 MB.
  uint64_t max_bytes = 256ull << 20;
};

struct IsfSource {
  std::span<const std::byte> btf = {};    // __start_BTF .. __stop_BTF
  const SymbolTable* symbols = nullptr;  // module symbols are skipped
  uint64_t kaslr_offset = 0;             // KERNELOFFSET
  std::string banner = {};               // linux_banner's bytes up to its NUL; empty: unknown
  std::string producer_version = {};     // vmemfs's version
};

struct IsfOutput {
  std::string json;
  size_t user_types = 0, enums = 0, base_types = 0, symbols = 0;
  std::vector<std::string> notes;  // caps that were hit and what they left out
};

// Errors: kBadData when libbpf refuses the BTF.
Result<IsfOutput> WriteIsf(const IsfSource& source, const IsfLimits& limits = {});

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_ISF_WRITER_H_
