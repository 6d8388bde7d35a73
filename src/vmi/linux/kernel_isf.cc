#include "vmi/linux/kernel_isf.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

// As LinuxOs::FindTypes: a distribution kernel's BTF is 4-6 MiB.
constexpr uint64_t kMaxBtfBytes = 64ull << 20;

// linux_banner up to its NUL; empty when it cannot be read or has no NUL within the bound.
std::string ReadBanner(KernelMemory& memory, const SymbolTable& symbols) {
  const Symbol* banner = symbols.Lookup("linux_banner");
  if (banner == nullptr) return "";
  uint64_t size = symbols.SizeOf(banner - symbols.symbols().data());
  std::vector<std::byte> bytes(std::clamp<uint64_t>(size, 1, kMaxBannerBytes));
  // The symbol may end near an unmapped page: read less rather than nothing.
  while (!memory.Read(banner->address, bytes).ok()) {
    if (bytes.size() <= 64) return "";
    bytes.resize(bytes.size() / 2);
  }
  auto nul = std::find(bytes.begin(), bytes.end(), std::byte{0});
  if (nul == bytes.end()) return "";
  return std::string(reinterpret_cast<const char*>(bytes.data()), nul - bytes.begin());
}

}  // namespace

bool CanMakeKernelIsf(const SymbolTable& symbols) {
  return symbols.Lookup("__start_BTF") != nullptr && symbols.Lookup("__stop_BTF") != nullptr;
}

std::string KernelIsfName(const VmcoreInfo& info) {
  std::string name = info.os_release();
  std::replace(name.begin(), name.end(), '/', '_');
  return name + ".json";
}

Result<IsfOutput> MakeKernelIsf(KernelMemory& memory, const SymbolTable& symbols,
                                const VmcoreInfo& info, const IsfLimits& limits) {
  const Symbol* start = symbols.Lookup("__start_BTF");
  const Symbol* stop = symbols.Lookup("__stop_BTF");
  if (!start || !stop) return NotFoundError("no __start_BTF/__stop_BTF (kernel without BTF)");
  if (stop->address <= start->address || stop->address - start->address > kMaxBtfBytes) {
    return BadDataError(fmt::format("implausible BTF size {}", stop->address - start->address));
  }
  std::vector<std::byte> btf(stop->address - start->address);
  VMEMFS_TRY(memory.Read(start->address, btf));
  IsfSource source{.btf = btf,
                   .symbols = &symbols,
                   .kaslr_offset = info.kernel_offset().value_or(0),
                   .banner = ReadBanner(memory, symbols),
                   .producer_version = VMEMFS_VERSION};
  return WriteIsf(source, limits);
}

}  // namespace vmemfs::vmi::linux_os
