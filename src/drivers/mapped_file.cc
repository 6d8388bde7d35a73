#include "drivers/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace vmemfs::drivers {
namespace {

// Closes the fd on every early return of Open.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

Result<size_t> RegularFileSize(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return OsError(path + ": cannot stat");
  if (S_ISDIR(st.st_mode)) return OsError(path + ": not a snapshot file", EISDIR);
  if (!S_ISREG(st.st_mode)) return OsError(path + ": not a regular file", EINVAL);
  if (st.st_size == 0) return BadDataError(path + ": empty file");
  return static_cast<size_t>(st.st_size);
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path, bool writable) {
  FdCloser fd{open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)};
  if (fd.fd < 0) return OsError(path + ": cannot open");
  VMEMFS_ASSIGN_OR_RETURN(size_t size, RegularFileSize(fd.fd, path));
  // No madvise: sequential reads of pmem profit from the kernel's default readahead, and the
  // random reads of page-table walks hit the page cache once warm.
  void* data = mmap(nullptr, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd.fd, 0);
  if (data == MAP_FAILED) return OsError(path + ": cannot map");
  return MappedFile(std::exchange(fd.fd, -1), static_cast<std::byte*>(data), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::Reset() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace vmemfs::drivers
