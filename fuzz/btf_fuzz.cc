// Fuzzes KernelTypes::FromBtf and every query the walkers make with hostile BTF bytes (the
// guest writes its own BTF). Checks that nothing crashes, hangs or reads out of bounds, and
// that answers are self-consistent: a member found is reported as present and bit fields fit
// the integer width given for them.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "invariant.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/task_layout.h"

namespace vmemfs::vmi::linux_os {
namespace {

void Query(const KernelTypes& types) {
  static constexpr std::pair<const char*, const char*> kMembers[] = {{"list_head", "next"},
                                                                     {"task_struct", "tasks.prev"},
                                                                     {"mm_struct", "mm_mt.ma_root"},
                                                                     {"a", "b"},
                                                                     {"a", "b.c.d.e"},
                                                                     {"", ""},
                                                                     {"task_struct", "comm"},
                                                                     {"cred", "uid.val"},
                                                                     {"x", "."}};
  for (auto [type, path] : kMembers) {
    auto m = types.Member(type, path);
    CHECK_INVARIANT(m.has_value() == types.Has(type, path));
    if (m && m->bit_size != 0) {
      CHECK_INVARIANT(m->bit_offset < 8);
      CHECK_INVARIANT(m->bit_offset + uint64_t{m->bit_size} <= m->size * 8);
    }
    (void)types.Size(type);
  }
  (void)types.Enumerator("pid_type", "PIDTYPE_PID");
  (void)types.Enumerator("a", "b");
  (void)ResolveTaskLayout(types);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vmemfs::vmi::linux_os::KernelTypes;
  auto types = KernelTypes::FromBtf(std::as_bytes(std::span(data, size)));
  if (types) vmemfs::vmi::linux_os::Query(**types);
  return 0;
}
