// Fuzzes WriteIsf with hostile BTF bytes (the guest writes its own BTF): nothing crashes,
// hangs or reads out of bounds, whatever libbpf accepts becomes valid JSON within the caps,
// and vmemfs's own ISF reader accepts what the writer wrote.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>

#include "invariant.h"
#include "vmi/linux/isf.h"
#include "vmi/linux/isf_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmemfs::vmi::linux_os;
  static const vmemfs::vmi::SymbolTable symbols({
      {0xffffffff9a000000, 'T', "_stext", ""},
      {0xffffffff9b000100, 'D', "init_task", ""},
      {0x2c000, 'D', "runqueues", ""},
      {0xffffffff9b200000, 'D', "linux_banner", ""},
  });
  IsfSource source{.btf = std::as_bytes(std::span(data, size)),
                   .symbols = &symbols,
                   .kaslr_offset = 0x19000000,
                   .banner = "Linux version fuzz\n",
                   .producer_version = "fuzz"};
  constexpr IsfLimits kLimits{.max_types = 5000, .max_bytes = 1 << 20};
  auto out = WriteIsf(source, kLimits);
  if (!out) return 0;
  auto json = nlohmann::json::parse(out->json, nullptr, /*allow_exceptions=*/false);
  CHECK_INVARIANT(!json.is_discarded());
  CHECK_INVARIANT(json.contains("metadata") && json.contains("user_types"));
  CHECK_INVARIANT(out->user_types + out->enums <= kLimits.max_types);
  CHECK_INVARIANT(ParseIsf(out->json, "fuzz.json").has_value());
  return 0;
}
