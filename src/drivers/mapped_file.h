// A regular file opened and mapped whole (MAP_SHARED), owning the fd, the mapping and what is
// known about the file's changes (file_watch.h): a file that another program truncates while
// it is mapped can never kill the process, and its lost bytes are known.
#ifndef VMEMFS_DRIVERS_MAPPED_FILE_H_
#define VMEMFS_DRIVERS_MAPPED_FILE_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "drivers/file_watch.h"

namespace vmemfs::drivers {

struct MapOptions {
  bool writable = false;  // Default: read-only. Writable: writes reach the file.
  // Ask the kernel for a lease (file_lease.h), so that file.stable() can be true. Default: no
  // (a file the caller knows others write, such as QEMU's RAM file, never gets one).
  bool lease = false;
};

class MappedFile {
 public:
  // Opens `path` without blocking and maps it. Errors, each naming `path`: kOs (open, stat,
  // mmap), kInvalidArgument for what is not a regular file (a FIFO, a socket, a device, a
  // directory: never opened, so never waited on), kBadData for an empty file. A refused lease
  // is no error: the file is then not stable() and Describe says why.
  static Result<MappedFile> Open(const std::string& path, const MapOptions& options);

  MappedFile(MappedFile&& other) noexcept = default;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The whole file as it was mapped; writable only if opened writable. Check what you copied
  // from it (watch().Check) before you trust it.
  std::span<std::byte> bytes() const { return {watch_->base(), watch_->size()}; }
  int fd() const { return watch_->fd(); }
  WatchedFile& watch() const { return *watch_; }

  // How the file is watched, and whether it changed since it was mapped (size, mtime), for
  // `info`. Looks at the file now (fstat).
  std::vector<Fact> Describe() const;

 private:
  MappedFile(std::unique_ptr<WatchedFile> watch, Status lease)
      : watch_(std::move(watch)), lease_(std::move(lease)) {}
  void Reset();

  std::unique_ptr<WatchedFile> watch_;  // null once moved from
  Status lease_;                        // why there is no lease, if there is none
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_MAPPED_FILE_H_
