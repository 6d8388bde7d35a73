// libFuzzer target: ParseSystemMap over arbitrary text returns an error or a bounded list of
// well-formed symbols; it never crashes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vmi/linux/system_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto syms = vmemfs::vmi::linux_os::ParseSystemMap(text, "fuzz");
  if (syms && syms->empty()) __builtin_trap();  // success means at least one symbol
  return 0;
}
