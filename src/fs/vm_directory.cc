#include "fs/vm_directory.h"

#include <fmt/format.h>

#include <charconv>

#include "fs/core_dump_file.h"
#include "fs/info_line.h"
#include "fs/kvmem_directory.h"
#include "fs/memory_files.h"
#include "fs/os_directories.h"
#include "fs/symbol_file_directories.h"
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

// One register: read at each open on a live VM; with --write-memory, writing a value sets it.
std::unique_ptr<File> MakeRegisterFile(vmi::Guest& guest, unsigned cpu, Register reg) {
  WriteHandler on_write;
  if (guest.live() && guest.writable()) {
    on_write = [&guest, cpu, reg](std::string_view text) -> Status {
      VMEMFS_ASSIGN_OR_RETURN(uint64_t v, ParseRegisterValue(text));
      return guest.SetVcpuRegister(reg, cpu, v);
    };
  }
  return MakeTextFile(
      &guest,
      [&guest, cpu, reg]() -> Result<std::string> {
        VMEMFS_ASSIGN_OR_RETURN(uint64_t v, guest.GetVcpuRegister(reg, cpu));
        return RegisterText(v);
      },
      std::move(on_write));
}

Status AddVcpuFiles(Tree& tree, Ino dir, vmi::Guest& guest, unsigned cpu) {
  auto regs = guest.Registers(cpu);
  if (!regs) return Status();  // the directory says the vCPU exists; its registers are unknown
  VMEMFS_TRY(tree.AddFile(dir, "regs", MakeTextFile(&guest, [&guest, cpu]() -> Result<std::string> {
                            VMEMFS_ASSIGN_OR_RETURN(drivers::RegisterSet now, guest.Registers(cpu));
                            return RegistersText(now);
                          }))
                 .status());
  for (size_t i = 0; i < drivers::kRegisterCount; ++i) {
    auto reg = static_cast<Register>(i);
    if (regs->Get(reg) && !regs->IsInferred(reg)) {
      VMEMFS_TRY(tree.AddFile(dir, std::string(drivers::RegisterName(reg)),
                              MakeRegisterFile(guest, cpu, reg))
                     .status());
    }
  }
  return Status();
}

Status AddVcpuDirectories(Tree& tree, Ino vcpus, vmi::Guest& guest) {
  for (unsigned cpu = 0; cpu < guest.vcpu_count(); ++cpu) {
    VMEMFS_ASSIGN_OR_RETURN(Ino dir, tree.AddDirectory(vcpus, std::to_string(cpu)));
    VMEMFS_TRY(AddVcpuFiles(tree, dir, guest, cpu));
  }
  return Status();
}

// ctl: reading gives the VM's state, writing "pause", "resume" or "flush" (drop every cache
// of facts that may have changed and check the kernel again) does it.
std::unique_ptr<File> MakeControlFile(vmi::Guest& guest) {
  return MakeTextFile(
      &guest,
      [&guest]() -> Result<std::string> {
        auto state = guest.State();
        return std::string(state ? drivers::RunStateName(*state) : "unknown") + "\n";
      },
      [&guest](std::string_view command) -> Status {
        if (command == "pause") return guest.Pause();
        if (command == "resume") return guest.Resume();
        if (command == "flush") {
          guest.Flush();
          return Status();
        }
        return InvalidArgumentError("ctl: unknown command '" + std::string(command) +
                                    "' (pause, resume, flush)");
      });
}

// The kernel's page tables now: kmem reads follow the guest's current kernel.
Result<vmi::AddressSpace> KernelSpace(vmi::Guest& guest) {
  auto view = guest.Kernel();
  if (!view->space) return UnavailableError("the guest's kernel page tables are not known now");
  return *view->space;
}

class VmProvider : public DirectoryProvider {
 public:
  VmProvider(vmi::Guest& guest, VmDirectoryOptions options)
      : guest_(guest), options_(std::move(options)) {}

  uint64_t generation() override { return guest_.generation(); }

  Result<std::vector<std::string>> Names() override {
    std::vector<std::string> names = {"info", "pmem"};
    if (guest_.live()) names.push_back("ctl");
    if (guest_.vcpu_count() > 0) names.push_back("vcpu");
    auto view = guest_.Kernel();
    if (view->space) {
      names.push_back("kmem");
      names.push_back("kvmem");
    }
    if (view->os) {
      names.push_back("proc");
      names.push_back("symbols");
      for (std::string& dir : SymbolFileDirectoryNames(*view)) names.push_back(std::move(dir));
      if (view->os->CoreDump()) names.push_back("vmcore");
    }
    return names;
  }

  Result<std::optional<Entry>> Make(std::string_view name) override {
    if (name == "pmem") return Entry::OfFile(MakePhysicalMemoryFile(guest_));
    if (name == "info") {
      return Entry::OfFile(MakeTextFile(&guest_, [this]() -> Result<std::string> {
        return VmInfoText(guest_, options_);
      }));
    }
    if (name == "ctl" && guest_.live()) return Entry::OfFile(MakeControlFile(guest_));
    if (name == "vcpu" && guest_.vcpu_count() > 0) {
      return Entry::OfDirectory(
          [this](Tree& tree, Ino dir) { return AddVcpuDirectories(tree, dir, guest_); });
    }
    auto view = guest_.Kernel();
    if (name == "kmem" && view->space) {
      vmi::PagingMode mode = view->space->mode;
      return Entry::OfFile(
          MakeVirtualMemoryFile(guest_, mode, [this] { return KernelSpace(guest_); }),
          /*identity=*/static_cast<uint64_t>(mode) + 1);
    }
    if (name == "kvmem" && view->space) return MakeKvmemDirectory(guest_, view);
    if ((name == "proc" || name == "symbols") && view->os) {
      return MakeOsDirectory(guest_, view, name);
    }
    if (name == "vmcore" && view->os) {
      // Laid out for this kernel: a new kernel is a new file (its identity is the view's).
      auto core = vmi::PlanCoreDump(guest_, *view);
      if (!core) return std::optional<Entry>();  // `info` says why (the vmcore fact)
      return Entry::OfFile(MakeCoreDumpFile(guest_, std::move(*core)), view->id);
    }
    if (view->os) {
      if (auto dir = MakeSymbolFileDirectory(view, name)) return dir;
    }
    return std::optional<Entry>();
  }

 private:
  vmi::Guest& guest_;
  const VmDirectoryOptions options_;
};

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

std::string VmInfoText(vmi::Guest& guest, const VmDirectoryOptions& options) {
  std::string text = InfoLine({"name", options.name}) + InfoLine({"source", options.source});
  for (const Fact& fact : guest.Describe()) text += InfoLine(fact);
  return text;
}

std::unique_ptr<DirectoryProvider> MakeVmDirectory(vmi::Guest& guest, VmDirectoryOptions options) {
  return std::make_unique<VmProvider>(guest, std::move(options));
}

Status AddVmDirectory(Tree& tree, vmi::Guest& guest, VmDirectoryOptions options) {
  std::string name = options.name;
  return tree.AddDirectory(kRootIno, std::move(name), MakeVmDirectory(guest, std::move(options)))
      .status();
}

}  // namespace vmemfs::fs
