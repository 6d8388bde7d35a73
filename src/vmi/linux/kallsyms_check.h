// Whether decoded kallsyms names can be trusted. kallsyms_names has no checksum, and any bytes
// decode to some names, so a damaged table would give a full count of garbage names (and
// every lookup by name would fail or, worse, find the wrong thing). The decoded names are
// checked three ways, and only a prefix that passes is kept:
//
//  1. Structure. kallsyms_markers (scripts/kallsyms.c) holds the offset in kallsyms_names of
//     every 256th name. VMCOREINFO does not give its address, but it follows kallsyms_names
//     8-byte aligned (where the names end if they decoded right), and kallsyms_token_table
//     follows it, 8-byte aligned, directly or after kallsyms_seqs_of_names (3 bytes a name;
//     6.1 stable, 6.2+): so it is also found from the token table when the names are damaged. A block of 256 names is kept when the decoder's offsets at both of
//     its ends are the markers' (the last block: when the names end right before the markers).
//  2. VMCOREINFO. Every SYMBOL(x) it gives in the kernel image (_stext, init_uts_ns, prb, ...)
//     that the kept names cover must be there under that name, if the name is there at all,
//     and at least one must be.
//  3. Shape. Every kept name is printable ASCII without spaces and every type is a letter nm
//     uses; more than one in a thousand that is not means damage.
// Without markers (older or newer layouts, synthetic tables) only 2 and 3 apply.
#ifndef VMEMFS_VMI_LINUX_KALLSYMS_CHECK_H_
#define VMEMFS_VMI_LINUX_KALLSYMS_CHECK_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmi/linux/kallsyms.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint32_t kKallsymsMarkerStride = 256;

// What the decoder saw of kallsyms_names.
struct DecodedNames {
  uint32_t count = 0;                  // kallsyms_num_syms
  std::vector<uint64_t> block_offsets;  // offset of name 256*i, for every block begun
  uint64_t end = 0;                    // offset after the last name decoded
  bool complete = false;               // all `count` names decoded
};

struct NamesVerdict {
  size_t keep = 0;       // symbols [0, keep) can be trusted
  bool markers = false;  // kallsyms_markers were found and compared
  std::string damage;    // why the rest was dropped; empty if nothing was
};

// `symbols`: the names decoded (a prefix of `count` when decoding stopped), with addresses.
NamesVerdict CheckKallsymsNames(const KernelReader& read, const KallsymsAddresses& at,
                                const DecodedNames& decoded, std::span<const Symbol> symbols);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KALLSYMS_CHECK_H_
