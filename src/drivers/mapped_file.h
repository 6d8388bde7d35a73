// A regular file opened and mapped whole (MAP_SHARED), owning both the fd and the mapping.
#ifndef VMEMFS_DRIVERS_MAPPED_FILE_H_
#define VMEMFS_DRIVERS_MAPPED_FILE_H_

#include <cstddef>
#include <span>
#include <string>

#include "base/status.h"

namespace vmemfs::drivers {

class MappedFile {
 public:
  // Opens `path` read-only, or read-write when `writable` (writes then reach the file).
  // Errors: kOs naming `path` (open, stat, mmap; EISDIR/EINVAL for a directory or other
  // non-regular file), kBadData for an empty file.
  static Result<MappedFile> Open(const std::string& path, bool writable);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The whole file; writable only if opened writable.
  std::span<std::byte> bytes() const { return {data_, size_}; }
  int fd() const { return fd_; }

 private:
  MappedFile(int fd, std::byte* data, size_t size) : fd_(fd), data_(data), size_(size) {}
  void Reset();

  int fd_ = -1;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_MAPPED_FILE_H_
