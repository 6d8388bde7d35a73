#include "fs/vm_directory.h"

#include <fmt/format.h>

#include <charconv>

#include "base/hex.h"
#include "fs/memory_files.h"
#include "fs/os_directories.h"
#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

using drivers::Register;

std::string RegisterText(uint64_t value) { return fmt::format("0x{:016x}\n", value); }

// Parses a value written to a register file: hex with 0x, or decimal.
Result<uint64_t> ParseRegisterValue(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t v;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return InvalidArgumentError("not a register value: '" + std::string(text) + "'");
  }
  return v;
}

// A snapshot's registers never change: fixed text. A live VM's are read at each open and,
// with --rw, set by writing a value.
std::unique_ptr<File> MakeRegisterFile(vmi::Guest& guest, unsigned cpu, Register reg,
                                       uint64_t value, bool writable) {
  if (!guest.driver().live()) return MakeTextFile(RegisterText(value));
  WriteHandler on_write;
  if (writable) {
    on_write = [&guest, cpu, reg](std::string_view text) -> Status {
      VMEMFS_ASSIGN_OR_RETURN(uint64_t v, ParseRegisterValue(text));
      return guest.driver().SetRegister(cpu, reg, v);
    };
  }
  return MakeLiveTextFile(
      [&guest, cpu, reg]() -> Result<std::string> {
        VMEMFS_ASSIGN_OR_RETURN(uint64_t v, guest.GetVcpuRegister(reg, cpu));
        return RegisterText(v);
      },
      std::move(on_write));
}

std::unique_ptr<File> MakeRegistersFile(vmi::Guest& guest, unsigned cpu,
                                        const drivers::RegisterSet& regs) {
  if (!guest.driver().live()) return MakeTextFile(RegistersText(regs));
  return MakeLiveTextFile([&guest, cpu]() -> Result<std::string> {
    VMEMFS_ASSIGN_OR_RETURN(drivers::RegisterSet now, guest.Registers(cpu));
    return RegistersText(now);
  });
}

Status AddVcpuDirectories(Tree& tree, Ino vm, vmi::Guest& guest, bool writable) {
  if (guest.vcpu_count() == 0) return Status();
  VMEMFS_ASSIGN_OR_RETURN(Ino vcpus, tree.AddDirectory(vm, "vcpu"));
  for (unsigned cpu = 0; cpu < guest.vcpu_count(); ++cpu) {
    VMEMFS_ASSIGN_OR_RETURN(Ino dir, tree.AddDirectory(vcpus, std::to_string(cpu)));
    auto regs = guest.Registers(cpu);
    if (!regs) continue;  // the directory says the vCPU exists; its registers are unknown
    VMEMFS_TRY(tree.AddFile(dir, "regs", MakeRegistersFile(guest, cpu, *regs)).status());
    for (size_t i = 0; i < drivers::kRegisterCount; ++i) {
      auto reg = static_cast<Register>(i);
      if (auto v = regs->Get(reg); v && !regs->IsInferred(reg)) {
        VMEMFS_TRY(tree.AddFile(dir, std::string(drivers::RegisterName(reg)),
                                MakeRegisterFile(guest, cpu, reg, *v, writable))
                       .status());
      }
    }
  }
  return Status();
}

// ctl: reading gives the VM's state, writing "pause", "resume" or "flush" (drop every cache
// of facts that may have changed) does it.
std::unique_ptr<File> MakeControlFile(vmi::Guest& guest, vmi::OperatingSystem* os) {
  return MakeLiveTextFile(
      [&guest]() -> Result<std::string> {
        auto state = guest.driver().State();
        return std::string(state ? drivers::RunStateName(*state) : "unknown") + "\n";
      },
      [&guest, os](std::string_view command) -> Status {
        if (command == "pause") return guest.Pause();
        if (command == "resume") return guest.Resume();
        if (command == "flush") {
          guest.FlushTranslationCache();
          if (os) os->Flush();
          return Status();
        }
        return InvalidArgumentError("ctl: unknown command '" + std::string(command) +
                                    "' (pause, resume, flush)");
      });
}

}  // namespace

std::string RegistersText(const drivers::RegisterSet& regs) {
  std::string text;
  for (size_t i = 0; i < drivers::kRegisterCount; ++i) {
    auto reg = static_cast<Register>(i);
    if (auto v = regs.Get(reg); v && !regs.IsInferred(reg)) {
      text += fmt::format("{} 0x{:016x}\n", drivers::RegisterName(reg), *v);
    }
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
  for (const Fact& fact : guest.driver().Describe()) line(fact.key, fact.value);
  line("live", guest.driver().live() ? "yes" : "no");
  if (auto state = guest.driver().State()) line("state", drivers::RunStateName(*state));
  line("writable", options.writable && guest.driver().writable() ? "yes" : "no");
  uint64_t ram = 0;
  for (const auto& r : guest.ranges()) ram += r.size();
  line("memory-size", Hex(guest.memory_size()));
  line("ram-bytes", std::to_string(ram));
  line("ram-ranges", std::to_string(guest.ranges().size()));
  for (const auto& r : guest.ranges())
    line("ram-range", fmt::format("0x{:x}-0x{:x}", r.start, r.end - 1));
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
  return PopulateVmDirectory(tree, vm, guest, os, options);
}

Status PopulateVmDirectory(Tree& tree, Ino vm, vmi::Guest& guest, vmi::OperatingSystem* os,
                           const VmDirectoryOptions& options) {
  VMEMFS_TRY(tree.AddFile(vm, "pmem", MakePhysicalMemoryFile(guest, options.writable)).status());
  if (auto dtb = guest.kernel_dtb()) {
    VMEMFS_TRY(
        tree.AddFile(vm, "kmem", MakeVirtualMemoryFile(guest, *dtb, options.writable)).status());
  }
  if (guest.driver().live()) {
    VMEMFS_TRY(tree.AddFile(vm, "info", MakeLiveTextFile([&guest, os, options] {
                              return Result<std::string>(VmInfoText(guest, os, options));
                            }))
                   .status());
    VMEMFS_TRY(tree.AddFile(vm, "ctl", MakeControlFile(guest, os)).status());
  } else {
    VMEMFS_TRY(tree.AddFile(vm, "info", MakeTextFile(VmInfoText(guest, os, options))).status());
  }
  if (os) VMEMFS_TRY(AddOsDirectories(tree, vm, guest, *os, options.writable));
  return AddVcpuDirectories(tree, vm, guest, options.writable);
}

}  // namespace vmemfs::fs
