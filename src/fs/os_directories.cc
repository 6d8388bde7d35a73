#include "fs/os_directories.h"

#include <fmt/format.h>

#include <charconv>
#include <set>

#include "fs/memory_files.h"
#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

using vmi::OperatingSystem;
using ProcessRef = std::shared_ptr<vmi::Process>;

// What every OS directory needs: the guest, and the kernel view it was made for.
struct Context {
  vmi::Guest* guest;
  std::shared_ptr<const vmi::KernelView> view;
  OperatingSystem& os() const { return *view->os; }
  vmi::PagingMode mode() const { return view->space->mode; }
};

std::optional<int32_t> ParsePid(std::string_view name) {
  int32_t pid;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || end != name.data() + name.size() || pid <= 0) return std::nullopt;
  return pid;
}

std::vector<std::string> PidNames(const std::vector<int32_t>& pids) {
  std::vector<std::string> names;
  names.reserve(pids.size());
  for (int32_t pid : pids) names.push_back(std::to_string(pid));
  return names;
}

// A text file made from one of the process's answers.
std::unique_ptr<File> ProcessText(const Context& ctx, ProcessRef process,
                                  Result<std::string> (vmi::Process::*answer)(),
                                  std::string_view suffix = "") {
  return MakeTextFile(ctx.guest, [process, answer, suffix]() -> Result<std::string> {
    VMEMFS_ASSIGN_OR_RETURN(std::string text, ((*process).*answer)());
    return text + std::string(suffix);
  });
}

std::string VmaName(const vmi::MemoryArea& a) { return fmt::format("{:x}-{:x}", a.start, a.end); }

// proc/<pid>/vmem/: one file per memory area, named like the maps ranges.
class VmemProvider : public DirectoryProvider {
 public:
  VmemProvider(Context ctx, ProcessRef process) : ctx_(std::move(ctx)), process_(process) {}
  uint64_t generation() override { return ctx_.guest->generation(); }
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto areas, process_->MemoryAreas());
    std::vector<std::string> names;
    for (const auto& a : areas) names.push_back(VmaName(a));
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    VMEMFS_ASSIGN_OR_RETURN(auto areas, process_->MemoryAreas());
    for (const auto& a : areas) {
      if (VmaName(a) != name) continue;
      ProcessRef process = process_;
      auto file = MakeVirtualWindowFile(*ctx_.guest, ctx_.mode(),
                                        [process] { return process->UserSpace(); }, a.start,
                                        a.end - a.start);
      return Entry::OfFile(std::move(file), a.start ^ (a.end << 1));
    }
    return std::optional<Entry>();
  }

 private:
  Context ctx_;
  ProcessRef process_;
};

// The files every task directory has (process and thread alike).
Status AddTaskFiles(Tree& tree, Ino dir, const Context& ctx, ProcessRef process) {
  using P = vmi::Process;
  VMEMFS_TRY(tree.AddFile(dir, "comm", ProcessText(ctx, process, &P::Comm, "\n")).status());
  VMEMFS_TRY(tree.AddFile(dir, "status", ProcessText(ctx, process, &P::StatusText)).status());
  VMEMFS_TRY(tree.AddFile(dir, "cmdline", ProcessText(ctx, process, &P::Cmdline)).status());
  if (process->kernel_thread()) return Status();  // no user address space
  VMEMFS_TRY(tree.AddFile(dir, "environ", ProcessText(ctx, process, &P::Environ)).status());
  VMEMFS_TRY(tree.AddFile(dir, "maps", ProcessText(ctx, process, &P::MapsText)).status());
  VMEMFS_TRY(tree.AddFile(dir, "exe", ProcessText(ctx, process, &P::ExePath, "\n")).status());
  // A process whose page tables cannot be found (a zombie) has no memory files.
  if (!process->UserSpace()) return Status();
  VMEMFS_TRY(tree.AddFile(dir, "dtb", MakeTextFile(ctx.guest, [process]() -> Result<std::string> {
                            VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, process->UserSpace());
                            return fmt::format("0x{:x}\n", space.root);
                          }))
                 .status());
  // The user half only: the kernel half (with its map of all RAM) is kmem's.
  auto space = [process] { return process->UserSpace(); };
  auto mem = MakeVirtualWindowFile(*ctx.guest, ctx.mode(), space, 0, vmi::UserSpaceEnd(ctx.mode()));
  VMEMFS_TRY(tree.AddFile(dir, "mem", std::move(mem)).status());
  return tree.AddDirectory(dir, "vmem", std::make_unique<VmemProvider>(ctx, process)).status();
}

// The entry of task `pid` if it belongs to thread group `tgid` (0: must lead its group).
Result<std::optional<Entry>> TaskEntry(const Context& ctx, std::string_view name, int32_t tgid,
                                       bool with_threads);

// proc/<pid>/task/: the threads of one process.
class ThreadsProvider : public DirectoryProvider {
 public:
  ThreadsProvider(Context ctx, int32_t tgid) : ctx_(std::move(ctx)), tgid_(tgid) {}
  uint64_t generation() override { return ctx_.guest->generation(); }
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto tids, ctx_.os().ThreadIds(tgid_));
    return PidNames(tids);
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    return TaskEntry(ctx_, name, tgid_, /*with_threads=*/false);
  }

 private:
  Context ctx_;
  int32_t tgid_;
};

Result<std::optional<Entry>> TaskEntry(const Context& ctx, std::string_view name, int32_t tgid,
                                       bool with_threads) {
  auto pid = ParsePid(name);
  if (!pid) return std::optional<Entry>();
  auto found = ctx.os().Process(*pid);
  if (!found && found.error().code() == ErrorCode::kNotFound) return std::optional<Entry>();
  VMEMFS_ASSIGN_OR_RETURN(ProcessRef process, found);
  if (process->tgid() != (tgid != 0 ? tgid : process->pid())) return std::optional<Entry>();
  uint64_t identity = process->identity();
  return Entry::OfDirectory(
      [ctx, process, with_threads](Tree& tree, Ino dir) -> Status {
        VMEMFS_TRY(AddTaskFiles(tree, dir, ctx, process));
        if (!with_threads) return Status();
        auto threads = std::make_unique<ThreadsProvider>(ctx, process->tgid());
        return tree.AddDirectory(dir, "task", std::move(threads)).status();
      },
      nullptr, identity);
}

// proc/: one directory per process (thread-group leader), as the guest's /proc lists them,
// and the guest's /proc/modules.
class ProcProvider : public DirectoryProvider {
 public:
  explicit ProcProvider(Context ctx) : ctx_(std::move(ctx)) {}
  uint64_t generation() override { return ctx_.guest->generation(); }
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto pids, ctx_.os().ProcessIds());
    std::vector<std::string> names = PidNames(pids);
    names.insert(names.begin(), "modules");
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    if (name == "modules") {
      auto view = ctx_.view;
      return Entry::OfFile(MakeTextFile(ctx_.guest, [view] { return view->os->ModulesText(); }));
    }
    return TaskEntry(ctx_, name, 0, /*with_threads=*/true);
  }

 private:
  Context ctx_;
};

// symbols/kernel/ (module empty) or symbols/modules/<module>/: one file per symbol name whose
// bytes are the kernel memory from the symbol to the next one.
class SymbolsProvider : public DirectoryProvider {
 public:
  SymbolsProvider(Context ctx, std::string module)
      : ctx_(std::move(ctx)), module_(std::move(module)) {}
  Result<std::vector<std::string>> Names() override {
    std::vector<std::string> names;
    std::set<std::string_view> seen;
    for (const auto& s : ctx_.os().Symbols().symbols()) {
      if (s.module == module_ && seen.insert(s.name).second) names.push_back(s.name);
    }
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    const vmi::SymbolTable& table = ctx_.os().Symbols();
    for (const vmi::Symbol* s : table.LookupAll(name)) {
      if (s->module != module_) continue;
      uint64_t size = table.SizeOf(s - table.symbols().data());
      vmi::AddressSpace space = *ctx_.view->space;  // the kernel these symbols belong to
      return Entry::OfFile(MakeVirtualWindowFile(
          *ctx_.guest, space.mode, [space] { return Result<vmi::AddressSpace>(space); },
          s->address, size));
    }
    return std::optional<Entry>();
  }

 private:
  Context ctx_;
  std::string module_;
};

// symbols/modules/: one directory per module that has symbols.
class ModulesProvider : public DirectoryProvider {
 public:
  explicit ModulesProvider(Context ctx) : ctx_(std::move(ctx)) {}
  Result<std::vector<std::string>> Names() override {
    std::set<std::string> modules;
    for (const auto& s : ctx_.os().Symbols().symbols()) {
      if (!s.module.empty()) modules.insert(s.module);
    }
    return std::vector<std::string>(modules.begin(), modules.end());
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    for (const auto& s : ctx_.os().Symbols().symbols()) {
      if (s.module == name) {
        return Entry::OfDirectory(nullptr,
                                  std::make_unique<SymbolsProvider>(ctx_, std::string(name)));
      }
    }
    return std::optional<Entry>();
  }

 private:
  Context ctx_;
};

Status AddSymbols(Tree& tree, Ino dir, const Context& ctx) {
  auto view = ctx.view;
  // The symbols of one kernel never change: a new kernel gets a new symbols/.
  VMEMFS_TRY(tree.AddFile(dir, "kallsyms", MakeTextFile(nullptr, [view]() -> Result<std::string> {
                            return view->os->Symbols().KallsymsText();
                          }))
                 .status());
  VMEMFS_TRY(
      tree.AddDirectory(dir, "kernel", std::make_unique<SymbolsProvider>(ctx, "")).status());
  return tree.AddDirectory(dir, "modules", std::make_unique<ModulesProvider>(ctx)).status();
}

}  // namespace

Result<std::optional<Entry>> MakeOsDirectory(vmi::Guest& guest,
                                             std::shared_ptr<const vmi::KernelView> view,
                                             std::string_view name) {
  Context ctx{&guest, view};
  if (name == "proc") {
    return Entry::OfDirectory(nullptr, std::make_unique<ProcProvider>(ctx), view->id);
  }
  if (name == "symbols") {
    return Entry::OfDirectory([ctx](Tree& tree, Ino dir) { return AddSymbols(tree, dir, ctx); },
                              nullptr, view->id);
  }
  return std::optional<Entry>();
}

}  // namespace vmemfs::fs
