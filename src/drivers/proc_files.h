// Small files of the host's /proc (and pid files) that the live QEMU drivers read to find and
// check QEMU's process: bounded reads, a strict pid parser, the process a thread belongs to.
#ifndef VMEMFS_DRIVERS_PROC_FILES_H_
#define VMEMFS_DRIVERS_PROC_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs::drivers {

// /proc/PID/status, cmdline, pid files: far below this; a bound keeps a strange /proc harmless.
inline constexpr size_t kMaxProcFile = size_t{1} << 20;

// The first `limit` bytes of the file at `path` (all of it when shorter). Errors: kOs.
Result<std::string> ReadSmallFile(const std::string& path, size_t limit = kMaxProcFile);

// The positive decimal number at the start of `text` after blanks (a pid file, a status field);
// what follows the digits is ignored. nullopt if there is none.
std::optional<pid_t> ParsePid(std::string_view text);

// The process (thread group) of host thread `tid`, from /proc/TID/status. Errors: kOs (no such
// thread), kBadData (no Tgid line).
Result<pid_t> ProcessOfThread(int64_t tid);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_PROC_FILES_H_
