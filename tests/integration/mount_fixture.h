// Runs the real vmemfs binary on real files and mounts, for integration tests.
//
// Environment (defaults from the build): VMEMFS_BIN = the vmemfs binary, VMEMFS_GUESTS = the
// directory tools/guest/guest.py prepared (one subdirectory per test guest with raw.mem,
// core.elf and truth/).
#ifndef VMEMFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
#define VMEMFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "truth/guest_truth.h"

namespace vmemfs::testing {

std::string VmemfsBinary();
std::string GuestsRoot();
std::string GuestDir(const std::string& guest);  // GuestsRoot()/guest
std::string ReadFile(const std::string& path);
// Up to n bytes at offset (fewer at EOF or on error; *err gets the errno of a failed read).
std::string PreadAt(const std::string& path, uint64_t offset, size_t n, int* err = nullptr);
// The value of `key` in `key: value # how` text (an info file), without the how, or "".
std::string InfoValue(const std::string& text, const std::string& key);
std::string TrimNewline(std::string s);

// A fresh empty directory under /tmp, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes a LiME file at `path` (per range a 32-byte header: magic 0x4C694D45, version 1, start,
// inclusive end, reserved 0; then the range's bytes) holding the bytes of `source` at the
// physical ranges [start, end) (offset = physical address, as in a raw snapshot). False if
// `source` is shorter than a range or a write failed.
bool WriteLime(const std::string& path, const std::string& source,
               const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

// How a Mount runs vmemfs: in the foreground (-f), or the usual way, daemonized.
enum class MountMode { kForeground, kDaemon };

// A running `vmemfs [-f] ARGS... MOUNTPOINT`. The constructor waits until the mount is up and
// records a failure (ok() false, error() says why) if vmemfs exits first (kDaemon: exits
// non-zero, or without a mount). The destructor always unmounts and reaps the daemon (the test
// process is made a child subreaper, so a daemonized vmemfs is its child).
class Mount {
 public:
  explicit Mount(const std::vector<std::string>& args, MountMode mode = MountMode::kForeground);
  ~Mount();
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return mnt_.path(); }
  std::string operator/(const std::string& rel) const { return path() + "/" + rel; }
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  TempDir mnt_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  bool ok_ = false;
  std::string error_;
};

// Runs vmemfs to completion (with -f) and returns its exit status and stderr; if it is still
// running after `timeout_s` it is unmounted and killed and the status is -1.
struct RunResult {
  int status;
  std::string err;
  bool mounted;  // the mount point became a mount while it ran
};
RunResult RunVmemfs(const std::vector<std::string>& args, const std::string& mountpoint,
                    int timeout_s = 10);

bool IsMountPoint(const std::string& path);

// Runs one QMP command (a JSON object text) on a fresh connection to `socket` and returns the
// response line ("{\"return\": ...}" or an error object); "" if QEMU does not answer in 10 s.
std::string QmpCommand(const std::string& socket, const std::string& command);
// An HMP command through QMP; returns its output text (JSON-unescaped newlines).
std::string HmpCommand(const std::string& socket, const std::string& command_line);

// A test guest's run state ("running", "paused", ...) as QEMU reports it on the guest's second
// monitor (DIR/qmp-test.sock, free while vmemfs holds qmp.sock); the reply itself if unparsable.
std::string QemuStatus(const std::string& guest_dir);

// Ground truth from tools/guest: registers.txt as {vcpu -> {name -> value}}.
std::map<int, std::map<std::string, uint64_t>> TruthRegisters(const std::string& guest);
// The address of `symbol` in truth/kallsyms.txt (0 if absent).
uint64_t TruthSymbol(const std::string& guest, const std::string& symbol);

// truth/ps.tsv by pid. `guest`: a test guest's name, or a guest directory (a libvirt
// domain's, with its truth/).
std::map<int, PsRow> TruthPs(const std::string& guest);

// truth/tasks.tsv by pid (guest_truth.h).
std::map<int, TruthTask> TruthTasks(const std::string& guest);
// EXPECTs that proc_dir (a mounted ".../proc/<pid>") shows t: status' Uid, Gid (all four ids)
// and Threads, and task/ lists exactly t.tids, each thread with its own Pid, the group's Tgid
// and the same ids.
void ExpectTaskIs(const std::string& proc_dir, int pid, const TruthTask& t);

// EXPECTs that the files symbols/modules/<module>/<name> under vm_dir (a mounted VM directory)
// hold kmem's bytes at their symbols, for the first `count` module code symbols of the
// guest's truth/kallsyms.txt. kmem's offset is the address's low `va_bits` bits (the
// canonical upper half folded down on x86-64; all 32 on i386). Returns how many were checked.
int ExpectModuleSymbolFilesReadKmem(const std::string& vm_dir, const std::string& guest,
                                    int va_bits, int count);

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_INTEGRATION_MOUNT_FIXTURE_H_
