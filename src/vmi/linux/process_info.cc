#include "vmi/linux/process_info.h"

#include <algorithm>
#include <cstring>
#include <span>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kPageSize = 4096;

// Reads [start, end) of the user address space at `dtb` page by page, stopping at the first
// page that cannot be read, as access_remote_vm does for /proc.
Result<std::string> ReadUserRange(KernelMemory& mem, uint64_t dtb, uint64_t start, uint64_t end,
                                  size_t max_bytes) {
  if (end <= start) return std::string();
  uint64_t len = std::min<uint64_t>(end - start, max_bytes);
  std::string out;
  out.reserve(len);
  while (out.size() < len) {
    uint64_t va = start + out.size();
    size_t chunk = std::min<uint64_t>(len - out.size(), kPageSize - (va & (kPageSize - 1)));
    size_t old = out.size();
    out.resize(old + chunk);
    Status s = mem.ReadUser(dtb, va, std::as_writable_bytes(std::span(out).subspan(old)));
    if (s.code() == ErrorCode::kFault) {
      out.resize(old);
      break;
    }
    VMEMFS_TRY(s);
  }
  return out;
}

Result<std::string> ReadArea(KernelMemory& mem, const Task& task, uint64_t start, uint64_t end,
                             size_t max_bytes) {
  if (task.mm == 0) return std::string();
  if (!task.dtb) return FaultError(task.mm, "process page tables unknown");
  return ReadUserRange(mem, *task.dtb, start, end, max_bytes);
}

// seq_escape_str(..., ESCAPE_SPACE | ESCAPE_SPECIAL, "\n\\") as the Name: line uses it.
std::string EscapeName(std::string_view comm) {
  std::string out;
  for (char c : comm) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<MmInfo> ReadMmInfo(KernelMemory& mem, const TaskLayout& l, const Task& task) {
  if (task.mm == 0) return NotFoundError("pid " + std::to_string(task.pid) + " has no mm");
  if (!l.mm_args) return UnsupportedError("mm_struct argument fields not known for this kernel");
  MmInfo info;
  const std::pair<uint64_t*, uint64_t> fields[] = {
      {&info.arg_start, l.mm_arg_start},     {&info.arg_end, l.mm_arg_end},
      {&info.env_start, l.mm_env_start},     {&info.env_end, l.mm_env_end},
      {&info.start_brk, l.mm_start_brk},     {&info.brk, l.mm_brk},
      {&info.start_stack, l.mm_start_stack}, {&info.exe_file, l.mm_exe_file}};
  for (auto [out, offset] : fields) {
    // exe_file unknown in an inferred layout (offset 0 is not it): left 0.
    if (l.partial && out == &info.exe_file && l.mm_exe_file == 0) continue;
    VMEMFS_ASSIGN_OR_RETURN(*out, mem.Pointer(task.mm + offset));
  }
  return info;
}

Result<std::string> ReadCmdline(KernelMemory& mem, const TaskLayout& layout, const Task& task,
                                size_t max_bytes) {
  if (task.mm == 0) return std::string();
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(mem, layout, task));
  VMEMFS_ASSIGN_OR_RETURN(std::string args,
                          ReadArea(mem, task, mm.arg_start, mm.arg_end, max_bytes));
  // The last byte decides, even when max_bytes cut the read short.
  if (mm.arg_end > mm.arg_start && !args.empty()) {
    char last = args.back();
    if (mm.arg_end - mm.arg_start != args.size()) {
      auto tail = ReadArea(mem, task, mm.arg_end - 1, mm.arg_end, 1);
      last = tail && tail->size() == 1 ? (*tail)[0] : '\0';
    }
    if (last != '\0') {
      args.resize(std::min<size_t>(args.size(), kPageSize));
      args.resize(strnlen(args.data(), args.size()));
    }
  }
  return args;
}

Result<std::string> ReadEnviron(KernelMemory& mem, const TaskLayout& layout, const Task& task,
                                size_t max_bytes) {
  if (task.mm == 0) return std::string();
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(mem, layout, task));
  return ReadArea(mem, task, mm.env_start, mm.env_end, max_bytes);
}

std::string StatusText(const Task& t) {
  std::string s;
  s += "Name:\t" + EscapeName(t.name) + "\n";
  s += "State:\t" + std::string(TaskStateName(t.state)) + "\n";
  s += "Tgid:\t" + std::to_string(t.tgid) + "\n";
  s += "Pid:\t" + std::to_string(t.pid) + "\n";
  s += "PPid:\t" + std::to_string(t.ppid) + "\n";
  // Real, effective, saved, filesystem: the order of fs/proc/array.c task_state().
  auto ids = [&](CredId real, CredId eff, CredId saved, CredId fs) {
    return std::to_string(t.ids[real]) + "\t" + std::to_string(t.ids[eff]) + "\t" +
           std::to_string(t.ids[saved]) + "\t" + std::to_string(t.ids[fs]) + "\n";
  };
  // Unknown credentials or thread count are left out, not shown as 0.
  if (t.has_ids) {
    s += "Uid:\t" + ids(kUid, kEuid, kSuid, kFsuid);
    s += "Gid:\t" + ids(kGid, kEgid, kSgid, kFsgid);
  }
  if (t.has_threads) s += "Threads:\t" + std::to_string(t.nr_threads) + "\n";
  return s;
}

}  // namespace vmemfs::vmi::linux_os
