#include "fs/vm_directory.h"

#include <fmt/format.h>

#include "fs/memory_files.h"
#include "fs/os_directories.h"
#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

using drivers::Register;

std::string Hex(uint64_t v) { return fmt::format("0x{:x}", v); }

Status AddVcpuDirectories(Tree& tree, Ino vm, vmi::Guest& guest) {
  if (guest.vcpu_count() == 0) return Status();
  VMEMFS_ASSIGN_OR_RETURN(Ino vcpus, tree.AddDirectory(vm, "vcpu"));
  for (unsigned cpu = 0; cpu < guest.vcpu_count(); ++cpu) {
    VMEMFS_ASSIGN_OR_RETURN(Ino dir, tree.AddDirectory(vcpus, std::to_string(cpu)));
    auto regs = guest.Registers(cpu);
    if (!regs) continue;  // the directory says the vCPU exists; its registers are unknown
    VMEMFS_TRY(tree.AddFile(dir, "regs", MakeTextFile(RegistersText(*regs))).status());
    for (size_t i = 0; i < drivers::kRegisterCount; ++i) {
      auto reg = static_cast<Register>(i);
      if (auto v = regs->Get(reg); v && !regs->IsInferred(reg)) {
        VMEMFS_TRY(tree.AddFile(dir, std::string(drivers::RegisterName(reg)),
                                MakeTextFile(fmt::format("0x{:016x}\n", *v)))
                       .status());
      }
    }
  }
  return Status();
}

}  // namespace

std::string RegistersText(const drivers::RegisterSet& regs) {
  std::string text;
  for (size_t i = 0; i < drivers::kRegisterCount; ++i) {
    auto reg = static_cast<Register>(i);
    if (auto v = regs.Get(reg); v && !regs.IsInferred(reg)) text += fmt::format("{} 0x{:016x}\n", drivers::RegisterName(reg), *v);
  }
  return text;
}

std::string VmInfoText(vmi::Guest& guest, vmi::OperatingSystem* os,
                       const VmDirectoryOptions& options) {
  std::string text;
  auto line = [&text](std::string_view key, std::string_view value) {
    text += fmt::format("{}: {}\n", key, value);
  };
  line("name", options.name);
  line("source", options.source);
  line("driver", guest.driver().kind());
  for (const auto& [key, value] : guest.driver().Describe()) line(key, value);
  line("live", guest.driver().live() ? "yes" : "no");
  line("writable", options.writable && guest.driver().writable() ? "yes" : "no");
  uint64_t ram = 0;
  for (const auto& r : guest.ranges()) ram += r.size();
  line("memory-size", Hex(guest.memory_size()));
  line("ram-bytes", std::to_string(ram));
  line("ram-ranges", std::to_string(guest.ranges().size()));
  for (const auto& r : guest.ranges()) line("ram-range", fmt::format("0x{:x}-0x{:x}", r.start, r.end - 1));
  line("vcpus", std::to_string(guest.vcpu_count()));
  if (auto mode = guest.paging_mode()) {
    line("page-mode", vmi::PagingModeName(*mode));
    line("kernel-dtb", Hex(*guest.kernel_dtb()));
    line("kernel-dtb-source", guest.kernel_dtb_source());
    line("kmem-size", Hex(vmi::AddressSpaceSize(*mode)));
  } else {
    line("page-mode", "unknown (no registers with paging enabled; kmem not available)");
  }
  line("vmcoreinfo-in-source", guest.driver().VmcoreInfo() ? "yes" : "no");
  if (os) {
    for (const auto& [key, value] : os->Describe()) line(key, value);
  } else {
    line("os", "not recognised");
  }
  return text;
}

Status AddVmDirectory(Tree& tree, vmi::Guest& guest, vmi::OperatingSystem* os,
                      const VmDirectoryOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(Ino vm, tree.AddDirectory(kRootIno, options.name));
  VMEMFS_TRY(tree.AddFile(vm, "pmem", MakePhysicalMemoryFile(guest, options.writable)).status());
  if (auto dtb = guest.kernel_dtb()) {
    VMEMFS_TRY(
        tree.AddFile(vm, "kmem", MakeVirtualMemoryFile(guest, *dtb, options.writable)).status());
  }
  VMEMFS_TRY(tree.AddFile(vm, "info", MakeTextFile(VmInfoText(guest, os, options))).status());
  if (os) VMEMFS_TRY(AddOsDirectories(tree, vm, guest, *os, options.writable));
  return AddVcpuDirectories(tree, vm, guest);
}

}  // namespace vmemfs::fs
