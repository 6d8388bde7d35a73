#include "vmi/linux/linux_os.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/hex.h"
#include "vmi/core_dump.h"
#include "vmi/linux/btf_scan.h"
#include "vmi/linux/init_task_scan.h"
#include "vmi/linux/core_dump_hints.h"
#include "vmi/linux/kallsyms.h"
#include "vmi/linux/linux_process.h"
#include "vmi/linux/module_layout_infer.h"
#include "vmi/linux/process_info.h"
#include "vmi/linux/task_layout_infer.h"
#include "vmi/linux/vma_layout_infer.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

// BTF of a distribution kernel is 4-6 MiB; refuse to copy absurd guest-claimed sizes.
constexpr uint64_t kMaxBtfBytes = 64ull << 20;
// include/linux/threads.h PID_MAX_LIMIT: no pid is larger.
constexpr int32_t kPidMaxLimit = 4 * 1024 * 1024;

std::string ErrorText(const Status& s) { return "unavailable (" + s.ToString() + ")"; }

bool PlausibleIds(const Task& t) {
  return t.pid > 0 && t.pid <= kPidMaxLimit && t.tgid > 0 && t.tgid <= kPidMaxLimit;
}

}  // namespace

LinuxOs::LinuxOs(Guest& guest, VmcoreInfo info, VmcoreInfoOrigin origin, KernelLayout layout,
                 std::shared_ptr<const LoadedOverrides> overrides)
    : guest_(guest),
      memory_(guest, AddressSpace{layout.mode, layout.page_table_root}, layout.pointer_size),
      vmcoreinfo_(std::move(info)),
      origin_(std::move(origin)),
      layout_(std::move(layout)),
      overrides_(std::move(overrides)) {}

std::shared_ptr<LinuxOs> LinuxOs::Create(Guest& guest, VmcoreInfo info, VmcoreInfoOrigin origin,
                                         KernelLayout layout,
                                         std::shared_ptr<const LoadedOverrides> overrides) {
  std::shared_ptr<LinuxOs> os(
      new LinuxOs(guest, std::move(info), std::move(origin), std::move(layout),
                  std::move(overrides)));
  os->Discover();
  return os;
}

void LinuxOs::Discover() {
  facts_.push_back({"os", "linux", ""});
  facts_.push_back({"vmcoreinfo", origin_.note_pa ? Hex(*origin_.note_pa) : "in the source",
                    origin_.how});
  facts_.insert(facts_.end(), layout_.provenance.begin(), layout_.provenance.end());
  // Types and the task list do not need symbol names: when the names are damaged, BTF and
  // init_task are found in the kernel image instead.
  if (Status s = FindSymbols(); !s.ok()) {
    facts_.push_back({"symbols", ErrorText(s), "the kernel's kallsyms tables"});
  }
  if (layout_.pointer_size != 8) {
    // Debian's i386 kernels carry no BTF (CONFIG_DEBUG_INFO_BTF off) nor init_task/modules
    // in kallsyms (CONFIG_KALLSYMS_ALL off): the layouts are inferred from memory.
    if (Status s = InferTypes(); !s.ok()) facts_.push_back({"types", ErrorText(s), ""});
    if (Status s = InferModules(); !s.ok()) facts_.push_back({"modules", ErrorText(s), ""});
    return;
  }
  if (Status s = FindTypes(); !s.ok()) {
    facts_.push_back({"types", ErrorText(s), ""});
    return;
  }
  if (Status s = FindInitTask(); !s.ok()) facts_.push_back({"init-task", ErrorText(s), ""});
  if (Status s = FindModuleSymbols(); !s.ok()) facts_.push_back({"modules", ErrorText(s), ""});
}

Status LinuxOs::FindSymbols() {
  if (overrides_ && !overrides_->symbols.empty()) return UseOverrideSymbols();
  VMEMFS_ASSIGN_OR_RETURN(auto at, KallsymsAddresses::FromVmcoreInfo(vmcoreinfo_));
  at.pointer_size = layout_.pointer_size;
  KallsymsReport report;
  VMEMFS_ASSIGN_OR_RETURN(symbols_, ReadKallsyms(memory_, at, &report));
  symbols_.set_address_digits(static_cast<int>(layout_.pointer_size * 2));
  std::string value = std::to_string(symbols_.size());
  std::string how = "the kernel's kallsyms tables, addresses from VMCOREINFO";
  if (report.kept < report.count) {
    value += fmt::format(" of {}", report.count);
    how += "; the other names do not decode and are left out: " + report.damage;
  }
  facts_.push_back({"symbols", value, how});
  return Status();
}

const std::vector<ImageRun>& LinuxOs::Image() {
  if (!image_) {
    auto runs = KernelImageRuns(guest_.physical(), memory_.kernel());
    image_ = runs ? *std::move(runs) : std::vector<ImageRun>();
  }
  return *image_;
}

// Struct layouts from the kernel's own BTF: between __start_BTF and __stop_BTF, or where its
// header is in the kernel's read-only data when those names cannot be had.
Status LinuxOs::FindTypes() {
  if (overrides_ && overrides_->types) return UseOverrideTypes();
  std::string how;
  Status by_name = BtfBySymbols(&how);
  if (!by_name.ok()) {
    auto scanned = FindBtfInImage(memory_, Image());
    if (!scanned) {
      return NotFoundError("no BTF: " + by_name.message() + "; " + scanned.error().message());
    }
    types_ = std::move(scanned->types);
    how = fmt::format("in kernel memory, {} bytes, found by its header at {:#x} ({})",
                      scanned->bytes, scanned->va, by_name.message());
  }
  VMEMFS_ASSIGN_OR_RETURN(task_layout_, ResolveTaskLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(vma_layout_, ResolveVmaLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(path_layout_, ResolvePathLayout(*types_));
  facts_.push_back({"types", "BTF", how});
  return Status();
}

Status LinuxOs::BtfBySymbols(std::string* how) {
  const Symbol* start = symbols_.Lookup("__start_BTF");
  const Symbol* stop = symbols_.Lookup("__stop_BTF");
  if (!start || !stop) return NotFoundError("no __start_BTF/__stop_BTF symbols");
  if (stop->address <= start->address || stop->address - start->address > kMaxBtfBytes) {
    return BadDataError(fmt::format("implausible BTF size {}", stop->address - start->address));
  }
  std::vector<std::byte> btf(stop->address - start->address);
  VMEMFS_TRY(memory_.Read(start->address, btf));
  VMEMFS_ASSIGN_OR_RETURN(types_, KernelTypes::FromBtf(btf));
  *how = fmt::format("in kernel memory, {} bytes", btf.size());
  return Status();
}

// The task list's head: the init_task symbol, or the idle task found in the kernel's data.
Status LinuxOs::FindInitTask() {
  if (const Symbol* init_task = symbols_.Lookup("init_task")) {
    init_task_ = init_task->address;
    return Status();
  }
  auto found = FindInitTaskInImage(memory_, Image(), *task_layout_);
  if (!found) return NotFoundError("no init_task symbol; " + found.error().message());
  init_task_ = *found;
  facts_.push_back({"init-task", Hex(*found),
                    "no init_task symbol: the task_struct named swapper/0 in the kernel's data "
                    "whose task list links back"});
  return Status();
}

// Where the searches of a kernel without BTF look: from _etext (page-aligned) for at most
// max_bytes, stopping at end_symbol when it follows, and below 4 GiB (such kernels are 32-bit;
// kallsyms is the guest's, so nothing here is trusted to be in order).
Result<LinuxOs::ImageWindow> LinuxOs::ImageData(uint64_t max_bytes, const char* end_symbol,
                                                std::string_view what) {
  constexpr uint64_t k4GiB = 1ull << 32;
  const Symbol* etext = symbols_.Lookup("_etext");
  if (!etext) return NotFoundError(fmt::format("no _etext in kallsyms to search {} after", what));
  ImageWindow w{etext->address & ~uint64_t{4095}, max_bytes};
  if (w.start >= k4GiB) return BadDataError(fmt::format("_etext {} is above 4 GiB", Hex(w.start)));
  const Symbol* end = end_symbol ? symbols_.Lookup(end_symbol) : nullptr;
  if (end && end->address > w.start) w.bytes = std::min(w.bytes, end->address - w.start);
  w.bytes = std::min(w.bytes, k4GiB - w.start);
  return w;
}

Status LinuxOs::InferTypes() {
  // init_task is in the image's data, a few MiB after the text: 64 MiB bounds the search.
  VMEMFS_ASSIGN_OR_RETURN(ImageWindow window, ImageData(64ull << 20, nullptr, "init_task"));
  InferInput in{window.start, window.bytes, layout_.page_offset, layout_.stext, layout_.stext_pa};
  VMEMFS_ASSIGN_OR_RETURN(InferredTasks inferred, InferTaskLayout32(memory_, in));
  task_layout_ = inferred.layout;
  init_task_ = inferred.init_task;
  vma_ranges_ = inferred.vma_ranges;
  facts_.push_back({"types", "inferred",
                    fmt::format("{}-bit kernel without BTF: task list, VMA and file offsets "
                                "inferred from memory",
                                layout_.pointer_size * 8)});
  facts_.insert(facts_.end(), inferred.how.begin(), inferred.how.end());
  if (vma_ranges_) {
    if (Status s = InferVmas(); !s.ok()) facts_.push_back({"vmas", ErrorText(s), ""});
  }
  return Status();
}

// maps' offsets from the VMAs of up to 8 user processes (vma_layout_infer.h).
Status LinuxOs::InferVmas() {
  constexpr size_t kSamples = 8;
  TaskLimits limits{.max_tasks = 4096, .max_threads_per_process = 1, .max_threads = 4096};
  VMEMFS_ASSIGN_OR_RETURN(auto tasks, ListTasks(memory_, *task_layout_, *init_task_, limits,
                                                nullptr));
  VmaInferInput in;
  in.page_offset = layout_.page_offset;
  in.ranges = *vma_ranges_;
  if (const Symbol* fn = symbols_.Lookup("special_mapping_name")) {
    in.special_mapping_name = fn->address;
  }
  for (const Task& t : tasks) {
    if (t.mm == 0 || in.samples.size() >= kSamples) continue;
    auto mm = ReadMmInfo(memory_, *task_layout_, t);
    auto vmas = ListVmaRanges(memory_, *vma_ranges_, t.mm);
    if (!mm || !vmas || vmas->empty()) continue;
    in.samples.push_back({t.mm, mm->start_stack, mm->start_brk, mm->brk, std::move(*vmas)});
  }
  VMEMFS_ASSIGN_OR_RETURN(InferredVmas inferred, InferVmaLayout32(memory_, in));
  vma_layout_ = inferred.layout;
  path_layout_ = inferred.layout.path;
  task_layout_->mm_exe_file = inferred.mm_exe_file;
  facts_.insert(facts_.end(), inferred.how.begin(), inferred.how.end());
  return Status();
}

Status LinuxOs::FindModuleSymbols() {
  const Symbol* head = symbols_.Lookup("modules");
  if (!head) {
    return NotFoundError(symbols_.empty() ? "no `modules` symbol (no kernel symbols)"
                                          : "no `modules` symbol (kernel without CONFIG_MODULES?)");
  }
  VMEMFS_ASSIGN_OR_RETURN(module_layout_, ResolveModuleLayout(*types_));
  modules_head_ = head->address;
  return AddModuleSymbols();
}

// The `modules` head and struct module's offsets from memory (module_layout_infer.h).
Status LinuxOs::InferModules() {
  // `modules` is in the image's .data, between _etext and __init_begin.
  VMEMFS_ASSIGN_OR_RETURN(ImageWindow window,
                          ImageData(32ull << 20, "__init_begin", "the `modules` head"));
  ModuleInferInput in{window.start, window.bytes, layout_.stext, layout_.page_offset};
  VMEMFS_ASSIGN_OR_RETURN(InferredModules inferred, InferModuleLayout32(memory_, in));
  module_layout_ = inferred.layout;
  modules_head_ = inferred.head;
  facts_.insert(facts_.end(), inferred.how.begin(), inferred.how.end());
  return AddModuleSymbols();
}

Status LinuxOs::AddModuleSymbols() {
  ModuleWalkReport report;
  VMEMFS_ASSIGN_OR_RETURN(auto modules,
                          ListModules(memory_, *module_layout_, *modules_head_, {}, &report));
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
  symbols_.set_address_digits(static_cast<int>(layout_.pointer_size * 2));
  std::string how = fmt::format("{} symbols of {} modules", symbols_.size() - kernel, modules.size());
  if (!first.ok()) how += "; partly: " + first.ToString();
  if (!report.stopped.ok()) how += "; the list stopped " + report.stopped.message();
  facts_.push_back({"module-symbols", std::to_string(symbols_.size() - kernel), how});
  return Status();
}

Result<std::vector<Module>> LinuxOs::ReadModules(ModuleWalkReport* report) {
  Guest::Batch batch(guest_);
  if (!module_layout_ || !modules_head_) {
    return UnsupportedError("no module layout or `modules` list head");
  }
  return ListModules(memory_, *module_layout_, *modules_head_, {}, report);
}

Result<std::string> LinuxOs::ModulesText() {
  VMEMFS_ASSIGN_OR_RETURN(auto modules, ReadModules(nullptr));
  return linux_os::ModulesText(modules, layout_.pointer_size);
}

// --- Override files (overrides.h) ---

Status LinuxOs::UseOverrideSymbols() {
  std::string how;
  VMEMFS_ASSIGN_OR_RETURN(symbols_, SlideFileSymbols(*overrides_, vmcoreinfo_, &how));
  facts_.push_back({"symbols", std::to_string(symbols_.size()),
                    overrides_->symbols_source + ", " + how});
  return Status();
}

// The file's types only: BTF in memory is not read, so the file is what gets tested.
Status LinuxOs::UseOverrideTypes() {
  types_ = overrides_->types;
  VMEMFS_ASSIGN_OR_RETURN(task_layout_, ResolveTaskLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(vma_layout_, ResolveVmaLayout(*types_));
  VMEMFS_ASSIGN_OR_RETURN(path_layout_, ResolvePathLayout(*types_));
  facts_.push_back({"types", overrides_->types_source, ""});
  return Status();
}

// --- Core dump ---

Result<CoreDumpHints> LinuxOs::CoreDump() {
  std::call_once(core_dump_once_, [this] {
    Guest::Batch batch(guest_);
    core_dump_ = FindCoreDumpHints(memory_, vmcoreinfo_, layout_, symbols_);
  });
  return *core_dump_;
}

// --- Freshness ---

// The note is where it was with the same text, the kernel's root still maps _stext where it
// did, and (live) a vCPU runs on page tables that agree: after a reset the old kernel's memory
// is often still intact, so only the registers tell that it no longer runs.
Result<bool> LinuxOs::StillRunning() {
  if (origin_.note_pa) {
    auto note = ReadVmcoreInfoNote(guest_, *origin_.note_pa);
    if (!note || note->text() != vmcoreinfo_.text()) return false;
  }
  auto stext = TranslateWith(guest_, layout_.mode, layout_.page_table_root, layout_.stext);
  if (!stext || *stext != layout_.stext_pa) return false;
  if (!guest_.live() || guest_.vcpu_count() == 0) return true;
  for (const RootCandidate& root : guest_.RegisterRoots()) {
    auto pa = TranslateWith(guest_, root.space.mode, root.space.root, layout_.stext);
    if (pa && *pa == layout_.stext_pa) return true;
  }
  return false;
}

// A 32-bit kernel's layouts are inferred from what runs on it: found while it boots, it may
// have no user process (VMAs, files, credentials, threads) or module to infer them from yet.
// A BTF kernel's layouts do not depend on what runs: nothing missing there can come later.
int LinuxOs::MissingParts() const {
  if (layout_.pointer_size == 8) return 0;
  const bool tasks = task_layout_.has_value();
  return !tasks + !(tasks && task_layout_->creds) + !(tasks && task_layout_->threads) +
         !vma_layout_.has_value() + !module_layout_.has_value();
}

// --- Tasks ---

uint64_t LinuxOs::Identity(const Task& task) {
  return task.address ^ (task.start_time * 0x9e3779b97f4a7c15ull);
}

std::shared_ptr<const LinuxOs::TaskSnapshot> LinuxOs::WalkTasks(uint64_t generation) {
  auto snap = std::make_shared<TaskSnapshot>();
  snap->generation = generation;
  if (!task_layout_ || !init_task_) {
    snap->status = UnsupportedError("no task layout or init_task");
    return snap;
  }
  auto leaders = ListTasks(memory_, *task_layout_, *init_task_, {}, &snap->report);
  if (!leaders) {
    snap->status = leaders.error();
    return snap;
  }
  auto add = [&snap](Task task) {
    if (PlausibleIds(task)) {
      snap->tasks.push_back(std::move(task));
    } else if (snap->implausible++ == 0) {
      snap->implausible_example = fmt::format("task {}: pid {} tgid {}", Hex(task.address),
                                              task.pid, task.tgid);
    }
  };
  for (const Task& leader : *leaders) {
    for (const ThreadRef& t : leader.threads) {
      if (t.address == leader.address) continue;
      if (auto thread = ReadTask(memory_, *task_layout_, t.address)) add(std::move(*thread));
    }
    add(leader);
  }
  std::sort(snap->tasks.begin(), snap->tasks.end(),
            [](const Task& a, const Task& b) { return a.pid < b.pid; });
  // Two tasks with one pid are garbage (or a list read while it changed): the first is kept.
  for (size_t i = 0; i < snap->tasks.size(); ++i) snap->by_pid.emplace(snap->tasks[i].pid, i);
  return snap;
}

Result<std::shared_ptr<const LinuxOs::TaskSnapshot>> LinuxOs::AllTasks() {
  const uint64_t generation = guest_.generation();
  std::lock_guard lock(tasks_mu_);
  if (!tasks_ || tasks_->generation != generation) {
    Guest::Batch batch(guest_);
    tasks_ = WalkTasks(generation);
  }
  if (!tasks_->status.ok()) return tasks_->status;
  return tasks_;
}

Result<Task> LinuxOs::CurrentTask(int32_t pid, uint64_t identity) {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  auto it = snap->by_pid.find(pid);
  if (it == snap->by_pid.end() || Identity(snap->tasks[it->second]) != identity) {
    return NotFoundError("task " + std::to_string(pid) + " has exited");
  }
  return snap->tasks[it->second];
}

Result<std::vector<int32_t>> LinuxOs::ProcessIds() {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  std::vector<int32_t> pids;
  for (const Task& t : snap->tasks) {
    if (t.pid == t.tgid) pids.push_back(t.pid);
  }
  return pids;
}

Result<std::vector<int32_t>> LinuxOs::ThreadIds(int32_t tgid) {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  std::vector<int32_t> tids;
  for (const Task& t : snap->tasks) {
    if (t.tgid == tgid) tids.push_back(t.pid);
  }
  return tids;
}

Result<std::shared_ptr<vmi::Process>> LinuxOs::Process(int32_t pid) {
  VMEMFS_ASSIGN_OR_RETURN(auto snap, AllTasks());
  auto it = snap->by_pid.find(pid);
  if (it == snap->by_pid.end()) return NotFoundError("no task " + std::to_string(pid));
  return std::shared_ptr<vmi::Process>(
      std::make_shared<LinuxProcess>(shared_from_this(), snap->tasks[it->second]));
}

// "358", or "101 (stopped at task 0x…: next->prev mismatch)", and what was dropped.
std::string LinuxOs::ProcessesFact(const TaskSnapshot& snap) {
  if (!snap.status.ok()) return ErrorText(snap.status);
  size_t processes = 0;
  for (const Task& t : snap.tasks) processes += t.pid == t.tgid;
  std::string text = std::to_string(processes);
  std::vector<std::string> notes;
  if (!snap.report.stopped.ok()) notes.push_back("stopped " + snap.report.stopped.message());
  if (snap.implausible > 0) {
    notes.push_back(fmt::format("{} tasks with impossible ids left out, e.g. {}", snap.implausible,
                                snap.implausible_example));
  }
  if (!snap.report.errors.empty()) {
    notes.push_back(fmt::format("{} tasks partly unreadable, e.g. {}", snap.report.errors.size(),
                                snap.report.errors.front().message()));
  }
  for (size_t i = 0; i < notes.size(); ++i) text += (i == 0 ? " (" : "; ") + notes[i];
  return notes.empty() ? text : text + ")";
}

std::vector<Fact> LinuxOs::Describe() {
  std::vector<Fact> facts = facts_;
  if (task_layout_) {
    auto snap = AllTasks();
    facts.push_back({"processes", snap ? ProcessesFact(**snap) : ErrorText(snap.error()),
                     "the kernel's task list (init_task.tasks)"});
  }
  if (module_layout_) {
    ModuleWalkReport report;
    auto modules = ReadModules(&report);
    std::string value = modules ? std::to_string(modules->size()) : ErrorText(modules.error());
    if (!report.stopped.ok()) value += " (stopped " + report.stopped.message() + ")";
    facts.push_back({"modules", value, "the kernel's module list (`modules`)"});
  }
  {
    std::lock_guard lock(isf_mu_);
    if (isf_fact_) facts.push_back(*isf_fact_);
  }
  auto core = CoreDump();
  std::string how = core ? core->how : "";
  // What the layout makes of the hints (the image's link-time copy for gdb, or why not)
  // depends on the RAM ranges too; a layout error is the file's own (`vmcore` is absent).
  if (core) {
    auto laid = vmi::CoreDump::Layout(guest_.ranges(), 0, *core);
    how = laid ? laid->how() : how + "; " + ErrorText(laid.error());
  }
  facts.push_back({"vmcore", core ? "yes" : ErrorText(core.error()), how});
  return facts;
}

}  // namespace vmemfs::vmi::linux_os
