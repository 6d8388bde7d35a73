// libFuzzer target: ParseIsf over arbitrary text returns an error or an ISF whose types answer
// lookups (cycles, huge arrays, bad descriptors) with errors, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vmi/linux/isf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto isf = vmemfs::vmi::linux_os::ParseIsf(text, "fuzz");
  if (!isf) return 0;
  const auto& t = *isf->types;
  for (const char* type : {"task_struct", "a", "s", "list_head"}) {
    (void)t.Size(type);
    for (const char* path : {"a", "tasks", "a.b", "mm_mt.ma_root", "x.y.z"}) {
      (void)t.Member(type, path);
    }
  }
  (void)t.Enumerator("maple_type", "maple_leaf_64");
  return 0;
}
