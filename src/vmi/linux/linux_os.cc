#include "vmi/linux/linux_os.h"

#include <fmt/format.h>

#include "vmi/linux/kallsyms.h"
#include "vmi/linux/maps_text.h"
#include "vmi/linux/process_info.h"
#include "vmi/linux/vmas.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

// BTF of a distribution kernel is 4-6 MiB; refuse to copy absurd guest-claimed sizes.
constexpr uint64_t kMaxBtfBytes = 64ull << 20;

std::string ErrorText(const Status& s) { return "unavailable (" + s.ToString() + ")"; }

}  // namespace

Result<std::unique_ptr<LinuxOs>> LinuxOs::Discover(Guest& guest,
                                                  const LinuxOverrides& overrides) {
  auto where = LocateVmcoreInfo(guest);
  if (!where) return NotFoundError("no Linux VMCOREINFO note: " + where.error().ToString());
  std::unique_ptr<LinuxOs> os(new LinuxOs(guest));
  if (!overrides.empty()) {
    LinuxOverrides copy = overrides;
    VMEMFS_TRY(copy.Load());
    os->overrides_ = copy.loaded;
  }
  VMEMFS_ASSIGN_OR_RETURN(os->vmcoreinfo_, VmcoreInfo::Parse(where->text));
  os->facts_.push_back({"os", "linux"});
  os->facts_.push_back({"vmcoreinfo", where->source});

  auto layout = FindKernelLayout(guest, *os->vmcoreinfo_);
  if (!layout) {
    // Without verified page tables nothing virtual can be trusted: pmem only.
    os->facts_.push_back({"kernel-page-tables", ErrorText(layout.error())});
    return os;
  }
  os->layout_ = std::move(*layout);
  guest.SetKernelPageTables(os->layout_.mode, os->layout_.page_table_root,
                            os->layout_.root_source);
  for (auto& fact : os->layout_.provenance) os->facts_.push_back(fact);

  if (Status s = os->FindSymbols(); !s.ok()) {
    os->facts_.push_back({"symbols", ErrorText(s)});
    return os;
  }
  if (Status s = os->FindTypes(); !s.ok()) {
    os->facts_.push_back({"types", ErrorText(s)});
    return os;
  }
  if (Status s = os->FindModuleSymbols(); !s.ok()) {
    os->facts_.push_back({"modules", ErrorText(s)});
  }
  return os;
}

Status LinuxOs::FindSymbols() {
  if (overrides_ && !overrides_->symbols.empty()) return UseOverrideSymbols();
  VMEMFS_ASSIGN_OR_RETURN(auto at, KallsymsAddresses::FromVmcoreInfo(*vmcoreinfo_));
  VMEMFS_ASSIGN_OR_RETURN(symbols_, ReadKallsyms(memory_, at));
  facts_.push_back({"symbols", fmt::format("{} from the kernel's kallsyms tables (addresses in "
                                           "VMCOREINFO)",
                                           symbols_.symbols().size())});
  return Status();
}

// Struct layouts from the kernel's own BTF, between __start_BTF and __stop_BTF.
Status LinuxOs::FindTypes() {
  if (overrides_ && overrides_->types) return UseOverrideTypes();
  const Symbol* start = symbols_.Lookup("__start_BTF");
  const Symbol* stop = symbols_.Lookup("__stop_BTF");
  if (!start || !stop) return NotFoundError("no __start_BTF/__stop_BTF (kernel without BTF)");
  if (stop->address <= start->address || stop->address - start->address > kMaxBtfBytes) {
    return BadDataError(fmt::format("implausible BTF size {}", stop->address - start->address));
  }
  std::vector<std::byte> btf(stop->address - start->address);
  VMEMFS_TRY(memory_.Read(start->address, btf));
  VMEMFS_ASSIGN_OR_RETURN(types_, KernelTypes::FromBtf(btf));
  VMEMFS_ASSIGN_OR_RETURN(task_layout_, ResolveTaskLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(vma_layout_, ResolveVmaLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(path_layout_, ResolvePathLayout(*types_));
  facts_.push_back({"types", fmt::format("BTF in kernel memory ({} bytes)", btf.size())});
  return Status();
}

Status LinuxOs::FindModuleSymbols() {
  const Symbol* head = symbols_.Lookup("modules");
  if (!head) return NotFoundError("no `modules` symbol (kernel without CONFIG_MODULES)");
  VMEMFS_ASSIGN_OR_RETURN(module_layout_, ResolveModuleLayout(*types_));
  ModuleWalkReport report;
  VMEMFS_ASSIGN_OR_RETURN(auto modules,
                          ListModules(memory_, *module_layout_, head->address, {}, &report));
  std::vector<Symbol> all(symbols_.symbols().begin(), symbols_.symbols().end());
  size_t kernel = all.size();
  Status first = report.errors.empty() ? Status() : report.errors.front();
  // One budget for all modules: a hostile guest could point every module at one huge table.
  constexpr size_t kMaxModuleSymbols = 2'000'000;
  for (const Module& m : modules) {
    if (all.size() - kernel >= kMaxModuleSymbols) {
      if (first.ok()) first = BadDataError("more than 2,000,000 module symbols; the rest skipped");
      break;
    }
    ModuleLimits limits;
    limits.max_symbols = static_cast<uint32_t>(
        std::min<size_t>(limits.max_symbols, kMaxModuleSymbols - (all.size() - kernel)));
    auto syms = ModuleSymbols(memory_, *module_layout_, m, limits);
    if (!syms) {
      if (first.ok()) first = syms.error().WithContext("symbols of " + m.name);
      continue;
    }
    all.insert(all.end(), std::make_move_iterator(syms->begin()),
               std::make_move_iterator(syms->end()));
  }
  symbols_ = SymbolTable(std::move(all));
  std::string fact = fmt::format("{} loaded, {} symbols", modules.size(), symbols_.size() - kernel);
  if (!first.ok()) fact += " (partly: " + first.ToString() + ")";
  facts_.push_back({"modules", fact});
  return Status();
}

Result<std::string> LinuxOs::ModulesText() {
  const Symbol* head = symbols_.Lookup("modules");
  if (!module_layout_ || !head) return UnsupportedError("no module layout or `modules` symbol");
  VMEMFS_ASSIGN_OR_RETURN(auto modules, ListModules(memory_, *module_layout_, head->address));
  return linux_os::ModulesText(modules);
}

// --- Override files (overrides.h) ---

Status LinuxOs::UseOverrideSymbols() {
  std::string how;
  VMEMFS_ASSIGN_OR_RETURN(symbols_, SlideFileSymbols(*overrides_, *vmcoreinfo_, &how));
  facts_.push_back({"symbols", fmt::format("{} from {}, {}", symbols_.size(),
                                           overrides_->symbols_source, how)});
  return Status();
}

// The file's types only: BTF in memory is not read, so the file is what gets tested.
Status LinuxOs::UseOverrideTypes() {
  types_ = overrides_->types;
  VMEMFS_ASSIGN_OR_RETURN(task_layout_, ResolveTaskLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(vma_layout_, ResolveVmaLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(path_layout_, ResolvePathLayout(*types_));
  facts_.push_back({"types", overrides_->types_source});
  return Status();
}

std::vector<std::pair<std::string, std::string>> LinuxOs::Describe() const {
  std::vector<std::pair<std::string, std::string>> lines = facts_;
  std::lock_guard lock(tasks_mu_);
  if (tasks_ && !tasks_->status.ok()) lines.push_back({"tasks", ErrorText(tasks_->status)});
  return lines;
}

void LinuxOs::Flush() {
  std::lock_guard lock(tasks_mu_);
  tasks_.reset();
}

std::shared_ptr<const LinuxOs::TaskSnapshot> LinuxOs::WalkTasks() {
  auto snap = std::make_shared<TaskSnapshot>();
  snap->taken = std::chrono::steady_clock::now();
  const Symbol* init_task = symbols_.Lookup("init_task");
  if (!task_layout_ || !init_task) {
    snap->status = UnsupportedError("no task layout or init_task symbol");
    return snap;
  }
  WalkReport report;
  auto leaders = ListTasks(memory_, *task_layout_, init_task->address, {}, &report);
  if (!leaders) {
    snap->status = leaders.error();
    return snap;
  }
  if (!report.errors.empty()) snap->status = report.errors.front();
  for (const Task& leader : *leaders) {
    for (const ThreadRef& t : leader.threads) {
      if (t.address == leader.address) continue;
      if (auto thread = ReadTask(memory_, *task_layout_, t.address)) {
        snap->tasks.push_back(std::move(*thread));
      }
    }
    snap->tasks.push_back(leader);
  }
  std::sort(snap->tasks.begin(), snap->tasks.end(),
            [](const Task& a, const Task& b) { return a.pid < b.pid; });
  for (size_t i = 0; i < snap->tasks.size(); ++i) snap->by_pid.emplace(snap->tasks[i].pid, i);
  return snap;
}

Result<std::shared_ptr<const LinuxOs::TaskSnapshot>> LinuxOs::AllTasks() {
  // A running guest's processes come and go; a second-old list is what `ps` would show.
  constexpr auto kLiveTaskListAge = std::chrono::seconds(1);
  std::lock_guard lock(tasks_mu_);
  bool stale = !tasks_ || (guest_.driver().live() &&
                           std::chrono::steady_clock::now() - tasks_->taken > kLiveTaskListAge);
  if (stale) tasks_ = WalkTasks();
  if (tasks_->tasks.empty() && !tasks_->status.ok()) return tasks_->status;
  return tasks_;
}

Result<Task> LinuxOs::FindTask(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  auto it = snap->by_pid.find(pid);
  if (it == snap->by_pid.end()) return NotFoundError("no task " + std::to_string(pid));
  return snap->tasks[it->second];
}

Result<std::vector<TaskSummary>> LinuxOs::Tasks() {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  std::vector<TaskSummary> out;
  out.reserve(snap->tasks.size());
  for (const Task& t : snap->tasks) out.push_back({t.pid, t.tgid, t.name, t.kernel_thread});
  return out;
}

Result<uint64_t> LinuxOs::PageTableRoot(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  if (!t->dtb) return NotFoundError("task " + std::to_string(pid) + " has no address space");
  return *t->dtb;
}

Result<std::string> LinuxOs::Cmdline(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  if (!t->mm) return std::string();
  return ReadCmdline(memory_, *task_layout_, *t);
}

Result<std::string> LinuxOs::Environ(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  if (!t->mm) return std::string();
  return ReadEnviron(memory_, *task_layout_, *t);
}

Result<std::string> LinuxOs::StatusText(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  return linux_os::StatusText(*t);
}

Result<std::string> LinuxOs::ExePath(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(memory_, *task_layout_, *t));
  if (!mm.exe_file) return NotFoundError("task " + std::to_string(pid) + " has no executable");
  return FilePath(memory_, *path_layout_, mm.exe_file);
}

Result<std::vector<MemoryArea>> LinuxOs::MemoryAreas(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  if (!t->mm || !vma_layout_) return std::vector<MemoryArea>();
  VMEMFS_ASSIGN_OR_RETURN(auto vmas, ListVmas(memory_, *vma_layout_, t->mm));
  std::vector<MemoryArea> areas;
  for (const Vma& v : vmas) areas.push_back({v.start, v.end, "", v.path});
  return areas;
}

Result<std::string> LinuxOs::MapsText(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(const Task task, FindTask(pid));
  const Task* t = &task;
  if (!t->mm || !vma_layout_) return std::string();
  VMEMFS_ASSIGN_OR_RETURN(auto vmas, ListVmas(memory_, *vma_layout_, t->mm));
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(memory_, *task_layout_, *t));
  return linux_os::MapsText(vmas, mm);
}


}  // namespace vmemfs::vmi::linux_os
