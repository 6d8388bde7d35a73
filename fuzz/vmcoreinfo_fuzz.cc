// libFuzzer target: VmcoreInfo::Parse on arbitrary text returns an error or a note that keeps
// its contract (a release, bounded text); it never crashes or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmi/linux/vmcoreinfo.h"

using vmemfs::vmi::linux_os::VmcoreInfo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto info = VmcoreInfo::Parse(text);
  if (!info) return 0;
  if (info->os_release().empty() || info->os_release().size() > VmcoreInfo::kMaxReleaseLength ||
      info->text().size() > VmcoreInfo::kMaxTextBytes) {
    std::abort();
  }
  if (info->page_size() && (*info->page_size() & (*info->page_size() - 1)) != 0) std::abort();
  (void)info->Symbol("_stext");
  (void)info->Number("phys_base");
  (void)info->Get("OSRELEASE");
  return 0;
}
