// LinuxOs's files for analysis tools: the kernel's Volatility 3 ISF (kernel_isf.h).
#include <fmt/format.h>

#include <chrono>

#include "vmi/linux/kernel_isf.h"
#include "vmi/linux/linux_os.h"

namespace vmemfs::vmi::linux_os {

std::vector<SymbolFile> LinuxOs::SymbolFiles() {
  if (!CanMakeKernelIsf(symbols_)) return {};
  std::string name = KernelIsfName(vmcoreinfo_);
  auto self = shared_from_this();
  auto make = [self, name]() -> Result<std::string> {
    Guest::Batch batch(self->guest_);
    auto start = std::chrono::steady_clock::now();
    auto isf = MakeKernelIsf(self->memory_, self->symbols_, self->vmcoreinfo_);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Fact fact{"isf", "isf/" + name, ""};
    if (isf) {
      fact.how = fmt::format(
          "Volatility 3 ISF from the kernel's BTF and kallsyms: {} bytes, {} user types, {} enums, "
          "{} symbols, made in {:.2f} s at first use",
          isf->json.size(), isf->user_types, isf->enums, isf->symbols, seconds);
      for (const std::string& note : isf->notes) fact.how += "; capped: " + note;
    } else {
      fact.value = "unavailable (" + isf.error().ToString() + ")";
    }
    std::lock_guard lock(self->isf_mu_);
    self->isf_fact_ = fact;
    if (!isf) return isf.error();
    return std::move(isf->json);
  };
  return {SymbolFile{"isf", name, std::move(make)}};
}

}  // namespace vmemfs::vmi::linux_os
