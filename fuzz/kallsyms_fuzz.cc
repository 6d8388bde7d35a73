// libFuzzer target: DecodeKallsyms over an arbitrary byte buffer as kernel memory returns an
// error or a bounded table; it never crashes, reads out of bounds or allocates without bound.
//
// Input: the whole buffer is kernel memory at kBase. Its first 16 bytes are 8 little-endian
// u16 offsets into it: num_syms, names, token_table, token_index, offsets, relative_base,
// _stext's low 16 bits (0xffff: none), and flags (bit 0: absolute kallsyms_addresses).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "vmi/linux/kallsyms.h"

namespace {

using namespace vmemfs::vmi::linux_os;  // NOLINT: fuzz entry point only

constexpr uint64_t kBase = 0xffffffff81000000ull;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 16) return 0;
  uint16_t f[8];
  std::memcpy(f, data, sizeof(f));
  KallsymsAddresses at;
  at.num_syms = kBase + f[0];
  at.names = kBase + f[1];
  at.token_table = kBase + f[2];
  at.token_index = kBase + f[3];
  if (f[7] & 1) {
    at.addresses = kBase + f[4];
  } else {
    at.offsets = kBase + f[4];
    at.relative_base = kBase + f[5];
  }
  if (f[6] != 0xffff) at.stext = kBase + f[6];
  KernelReader read = [&](uint64_t va, std::span<std::byte> out) -> vmemfs::Status {
    if (va < kBase || va - kBase > size || out.size() > size - (va - kBase)) {
      return vmemfs::FaultError(va);
    }
    std::memcpy(out.data(), data + (va - kBase), out.size());
    return vmemfs::Status();
  };
  auto table = DecodeKallsyms(read, at);
  if (!table) return 0;
  if (table->size() == 0 || table->size() > kMaxKallsyms) std::abort();
  for (const vmemfs::vmi::Symbol& s : table->symbols()) {
    if (s.name.size() >= kMaxNameLength) std::abort();
  }
  (void)table->KallsymsText();
  (void)table->Lookup("_stext");
  return 0;
}
