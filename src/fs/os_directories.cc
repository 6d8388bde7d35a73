#include "fs/os_directories.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "fs/memory_files.h"
#include "fs/text_file.h"

namespace vmemfs::fs {
namespace {

using vmi::OperatingSystem;

struct Context {
  vmi::Guest& guest;
  OperatingSystem& os;
  bool writable;
};

std::optional<int32_t> ParsePid(std::string_view name) {
  int32_t pid;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || end != name.data() + name.size() || pid <= 0) return std::nullopt;
  return pid;
}

// The task `pid`, or nullopt.
Result<std::optional<vmi::TaskSummary>> FindTask(OperatingSystem& os, int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(auto tasks, os.Tasks());
  for (auto& t : tasks) {
    if (t.pid == pid) return std::optional<vmi::TaskSummary>(std::move(t));
  }
  return std::optional<vmi::TaskSummary>();
}

std::string VmaName(const vmi::MemoryArea& a) { return fmt::format("{:x}-{:x}", a.start, a.end); }

// proc/<pid>/vmem/: one file per memory area, named like the maps ranges.
class VmemProvider : public DirectoryProvider {
 public:
  VmemProvider(Context ctx, int32_t pid) : ctx_(ctx), pid_(pid) {}
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto areas, ctx_.os.MemoryAreas(pid_));
    std::vector<std::string> names;
    for (const auto& a : areas) names.push_back(VmaName(a));
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    VMEMFS_ASSIGN_OR_RETURN(auto areas, ctx_.os.MemoryAreas(pid_));
    VMEMFS_ASSIGN_OR_RETURN(uint64_t dtb, ctx_.os.PageTableRoot(pid_));
    for (const auto& a : areas) {
      if (VmaName(a) != name) continue;
      return std::optional<Entry>(Entry::OfFile(
          MakeVirtualWindowFile(ctx_.guest, dtb, a.start, a.end - a.start, ctx_.writable)));
    }
    return std::optional<Entry>();
  }

 private:
  Context ctx_;
  int32_t pid_;
};

// The files every task directory has (process and thread alike).
Status AddTaskFiles(Tree& tree, Ino dir, Context ctx, const vmi::TaskSummary& task) {
  int32_t pid = task.pid;
  OperatingSystem& os = ctx.os;
  VMEMFS_TRY(tree.AddFile(dir, "comm", MakeTextFile(task.comm + "\n")).status());
  VMEMFS_TRY(
      tree.AddFile(dir, "status", MakeLazyTextFile([&os, pid] { return os.StatusText(pid); }))
          .status());
  VMEMFS_TRY(tree.AddFile(dir, "cmdline", MakeLazyTextFile([&os, pid] { return os.Cmdline(pid); }))
                 .status());
  if (task.kernel_thread) return Status();  // no user address space
  VMEMFS_TRY(tree.AddFile(dir, "environ", MakeLazyTextFile([&os, pid] { return os.Environ(pid); }))
                 .status());
  VMEMFS_TRY(tree.AddFile(dir, "maps", MakeLazyTextFile([&os, pid] { return os.MapsText(pid); }))
                 .status());
  VMEMFS_TRY(tree.AddFile(dir, "exe", MakeLazyTextFile([&os, pid]() -> Result<std::string> {
                            VMEMFS_ASSIGN_OR_RETURN(std::string path, os.ExePath(pid));
                            return path + "\n";
                          }))
                 .status());
  auto dtb = os.PageTableRoot(pid);
  if (!dtb) return Status();  // a process whose page tables cannot be found has no memory files
  VMEMFS_TRY(tree.AddFile(dir, "dtb", MakeTextFile(fmt::format("0x{:x}\n", *dtb))).status());
  VMEMFS_TRY(
      tree.AddFile(dir, "mem", MakeVirtualMemoryFile(ctx.guest, *dtb, ctx.writable)).status());
  return tree.AddDirectory(dir, "vmem", std::make_unique<VmemProvider>(ctx, pid)).status();
}

// proc/<pid>/task/: the threads of one process.
class ThreadsProvider : public DirectoryProvider {
 public:
  ThreadsProvider(Context ctx, int32_t tgid) : ctx_(ctx), tgid_(tgid) {}
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto tasks, ctx_.os.Tasks());
    std::vector<std::string> names;
    for (const auto& t : tasks) {
      if (t.tgid == tgid_) names.push_back(std::to_string(t.pid));
    }
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    auto tid = ParsePid(name);
    if (!tid) return std::optional<Entry>();
    VMEMFS_ASSIGN_OR_RETURN(auto task, FindTask(ctx_.os, *tid));
    if (!task || task->tgid != tgid_) return std::optional<Entry>();
    Context ctx = ctx_;
    return std::optional<Entry>(Entry::OfDirectory(
        [ctx, t = *task](Tree& tree, Ino dir) { return AddTaskFiles(tree, dir, ctx, t); }));
  }

 private:
  Context ctx_;
  int32_t tgid_;
};

// proc/: one directory per process (thread-group leader), as the guest's /proc lists them,
// and the guest's /proc/modules.
class ProcProvider : public DirectoryProvider {
 public:
  explicit ProcProvider(Context ctx) : ctx_(ctx) {}
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto tasks, ctx_.os.Tasks());
    std::vector<std::string> names = {"modules"};
    for (const auto& t : tasks) {
      if (t.pid == t.tgid) names.push_back(std::to_string(t.pid));
    }
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    if (name == "modules") {
      OperatingSystem& os = ctx_.os;
      return std::optional<Entry>(
          Entry::OfFile(MakeLazyTextFile([&os] { return os.ModulesText(); })));
    }
    auto pid = ParsePid(name);
    if (!pid) return std::optional<Entry>();
    VMEMFS_ASSIGN_OR_RETURN(auto task, FindTask(ctx_.os, *pid));
    if (!task || task->tgid != task->pid) return std::optional<Entry>();
    Context ctx = ctx_;
    return std::optional<Entry>(Entry::OfDirectory([ctx, t = *task](Tree& tree, Ino dir) -> Status {
      VMEMFS_TRY(AddTaskFiles(tree, dir, ctx, t));
      auto threads = std::make_unique<ThreadsProvider>(ctx, t.tgid);
      return tree.AddDirectory(dir, "task", std::move(threads)).status();
    }));
  }

 private:
  Context ctx_;
};

// symbols/kernel/ (module empty) or symbols/modules/<module>/: one file per symbol name whose
// bytes are the kernel memory from the symbol to the next one.
class SymbolsProvider : public DirectoryProvider {
 public:
  SymbolsProvider(Context ctx, std::string module) : ctx_(ctx), module_(std::move(module)) {}
  Result<std::vector<std::string>> Names() override {
    std::vector<std::string> names;
    std::set<std::string_view> seen;
    for (const auto& s : ctx_.os.Symbols().symbols()) {
      if (s.module == module_ && seen.insert(s.name).second) names.push_back(s.name);
    }
    return names;
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    const vmi::SymbolTable& table = ctx_.os.Symbols();
    auto dtb = ctx_.guest.kernel_dtb();
    if (!dtb) return std::optional<Entry>();
    for (const vmi::Symbol* s : table.LookupAll(name)) {
      if (s->module != module_) continue;
      uint64_t size = table.SizeOf(s - table.symbols().data());
      return std::optional<Entry>(
          Entry::OfFile(MakeVirtualWindowFile(ctx_.guest, *dtb, s->address, size, ctx_.writable)));
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
  explicit ModulesProvider(Context ctx) : ctx_(ctx) {}
  Result<std::vector<std::string>> Names() override {
    std::set<std::string> modules;
    for (const auto& s : ctx_.os.Symbols().symbols()) {
      if (!s.module.empty()) modules.insert(s.module);
    }
    return std::vector<std::string>(modules.begin(), modules.end());
  }
  Result<std::optional<Entry>> Make(std::string_view name) override {
    for (const auto& s : ctx_.os.Symbols().symbols()) {
      if (s.module == name) {
        return std::optional<Entry>(Entry::OfDirectory(
            nullptr, std::make_unique<SymbolsProvider>(ctx_, std::string(name))));
      }
    }
    return std::optional<Entry>();
  }

 private:
  Context ctx_;
};

}  // namespace

Status AddOsDirectories(Tree& tree, Ino vm, vmi::Guest& guest, OperatingSystem& os, bool writable) {
  Context ctx{guest, os, writable};
  VMEMFS_TRY(tree.AddDirectory(vm, "proc", std::make_unique<ProcProvider>(ctx)).status());
  VMEMFS_ASSIGN_OR_RETURN(Ino symbols, tree.AddDirectory(vm, "symbols"));
  VMEMFS_TRY(tree.AddFile(symbols, "kallsyms", MakeLazyTextFile([&os]() -> Result<std::string> {
                            return os.Symbols().KallsymsText();
                          }))
                 .status());
  if (guest.kernel_dtb()) {
    VMEMFS_TRY(
        tree.AddDirectory(symbols, "kernel", std::make_unique<SymbolsProvider>(ctx, "")).status());
    VMEMFS_TRY(
        tree.AddDirectory(symbols, "modules", std::make_unique<ModulesProvider>(ctx)).status());
  }
  return Status();
}

}  // namespace vmemfs::fs
