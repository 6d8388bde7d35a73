// What the filesystem may ask of a guest operating system, whatever it is. The filesystem sees
// only these interfaces; each OS (Linux first) implements them under src/vmi/<os>/ and is
// registered in os_registry.cc, the one place that knows every OS.
//
// Freshness: an OperatingSystem describes one running kernel. Lists (processes, threads,
// modules) are read again whenever the guest's freshness generation (Guest::generation) has
// moved on, so a snapshot's are read once and a running VM's are at most a second old. When the
// guest boots another kernel, the Guest drops this object and finds a new one.
#ifndef VMEMFS_VMI_OS_H_
#define VMEMFS_VMI_OS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/paging.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi {

// A virtual memory area of a process.
struct MemoryArea {
  uint64_t start;
  uint64_t end;       // exclusive
  std::string perms;  // "r-xp"
  std::string name;   // path, [heap], [stack], ... or empty
};

// One task (a thread; a process is its thread-group leader) as found by one reading of the task
// list. Its answers are read from guest memory at each call; once the task has exited (or its
// pid names another task) they fail with kNotFound.
// Thread safety: every method may be called concurrently.
class Process {
 public:
  virtual ~Process() = default;
  virtual int32_t pid() const = 0;   // thread id
  virtual int32_t tgid() const = 0;  // process id
  virtual bool kernel_thread() const = 0;
  // Equal for two handles of the same task, different for a task that reuses the pid.
  virtual uint64_t identity() const = 0;

  virtual Result<std::string> Comm() = 0;  // the name /proc/<pid>/comm shows
  // The user address space; kNotFound for a task without one (kernel thread, zombie).
  virtual Result<AddressSpace> UserSpace() = 0;
  virtual Result<std::string> Cmdline() = 0;     // /proc/<pid>/cmdline bytes
  virtual Result<std::string> Environ() = 0;     // /proc/<pid>/environ bytes
  virtual Result<std::string> StatusText() = 0;  // /proc/<pid>/status subset
  virtual Result<std::string> ExePath() = 0;
  virtual Result<std::vector<MemoryArea>> MemoryAreas() = 0;
  virtual Result<std::string> MapsText() = 0;  // /proc/<pid>/maps
};

// A file that analysis tools read to understand one kernel (a Volatility 3 ISF, ...): where it
// goes in the VM directory and how it is made. Making it may take seconds and give tens of
// MiB, so it is made at most once per kernel, when first used, never to list a directory.
struct SymbolFile {
  std::string directory;  // "isf"
  std::string name;       // "6.1.0-13-cloud-amd64.json"
  std::function<Result<std::string>()> make;
};

// What a core-file writer (core_dump.h) needs from an OS so that the OS's own debuggers can open
// a dump of it: the note by which they recognise the kernel, and where the kernel maps physical
// memory and its own image. Names and addresses only: the writer lays out the file, the OS
// never sees ELF.
struct CoreDumpHints {
  std::string note_name;  // ELF note name, e.g. "VMCOREINFO"
  uint32_t note_type = 0;
  std::string note_text;  // the note's bytes, as the kernel keeps them
  // The virtual address at which the kernel maps physical address 0 (its direct map), if any.
  std::optional<uint64_t> direct_map_base;
  // The kernel's own image, where it is mapped apart from the direct map.
  struct Image {
    uint64_t va;
    uint64_t pa;
    uint64_t length;
    // Where the image's symbols are linked, when that is not `va` (a randomized kernel): a
    // debugger that does not relocate them (gdb reads no VMCOREINFO) looks for the image there.
    std::optional<uint64_t> link_va;
  };
  std::optional<Image> kernel_image;
  std::string how;  // how they were found, for `info`
};

// Thread safety: every method may be called concurrently.
class OperatingSystem {
 public:
  virtual ~OperatingSystem() = default;

  virtual std::string_view name() const = 0;  // "linux"
  // What was found and how, what failed, and how the last walks ended (a walk that stopped
  // early says where and why).
  virtual std::vector<Fact> Describe() = 0;

  // The processes (thread-group leaders) in pid order, and the threads of one process. A
  // damaged task list yields the tasks found before the damage (Describe says so).
  virtual Result<std::vector<int32_t>> ProcessIds() = 0;
  virtual Result<std::vector<int32_t>> ThreadIds(int32_t tgid) = 0;
  // The task `pid` (any thread); kNotFound if there is none now.
  virtual Result<std::shared_ptr<vmi::Process>> Process(int32_t pid) = 0;

  // The loaded kernel modules as the guest's /proc/modules shows them (read at each call).
  virtual Result<std::string> ModulesText() = 0;
  // The kernel's and modules' symbols (empty when none were found); the modules' are those
  // loaded when this kernel was found.
  virtual const SymbolTable& Symbols() const = 0;
  // Files for analysis tools this kernel can have (none by default); cheap to call.
  virtual std::vector<SymbolFile> SymbolFiles() { return {}; }

  // How many parts of this object were not found from the guest's state when it was made but
  // may be later: a 32-bit Linux kernel found while it boots has no user process or module to
  // infer its layouts from yet. 0 by default. The Guest looks for the kernel again on the
  // freshness rule's schedule and keeps the new object only when it misses fewer.
  virtual int MissingParts() const { return 0; }

  // True while the kernel this object describes still runs (a cheap check: its identity note
  // and page tables are where they were). False or an error: the Guest drops this object.
  virtual Result<bool> StillRunning() = 0;

  // What a core dump of this kernel needs; kUnsupported for an OS whose tools read none.
  // Constant for the life of this object (one running kernel).
  virtual Result<CoreDumpHints> CoreDump() { return UnsupportedError("no core dump format"); }
};

// Files that replace what would be found in memory (--symbols, --isf, --offsets). Each OS
// decides what they mean to it.
struct OsOverrides {
  std::optional<std::string> system_map;
  std::optional<std::string> isf;
  std::optional<std::string> offsets;
  bool empty() const { return !system_map && !isf && !offsets; }
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_OS_H_
