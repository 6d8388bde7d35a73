#include "drivers/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <utility>

#include "base/hex.h"
#include "drivers/file_lease.h"

namespace vmemfs::drivers {
namespace {

// Closes the fd on every early return of Open.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

// Everything but a regular file is refused before it is opened: opening a FIFO waits for a
// writer, a tty may become ours, and none of them has a size to map.
Status CheckRegular(const struct stat& st, const std::string& path) {
  const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                     : S_ISSOCK(st.st_mode) ? "a socket (for a QEMU monitor socket write qemu:PATH)"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISREG(st.st_mode)  ? nullptr
                                            : "not a regular file";
  if (kind == nullptr) {
    if (st.st_size == 0) return BadDataError(path + ": empty file");
    return Status();
  }
  return InvalidArgumentError(path + ": " + kind + ", not a snapshot file");
}

std::string Time(const struct timespec& t) {
  char text[64];
  struct tm tm;
  gmtime_r(&t.tv_sec, &tm);
  strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text + std::string(" UTC");
}

}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path, const MapOptions& options) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return OsError(path + ": cannot open");
  VMEMFS_TRY(CheckRegular(st, path));
  // O_NONBLOCK: should a FIFO have replaced the file since stat, the open cannot wait.
  FdCloser fd{open(path.c_str(),
                   (options.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  if (fd.fd < 0) return OsError(path + ": cannot open");
  if (fstat(fd.fd, &st) != 0) return OsError(path + ": cannot stat");
  VMEMFS_TRY(CheckRegular(st, path));
  const auto size = static_cast<size_t>(st.st_size);
  // No madvise: sequential reads of pmem profit from the kernel's default readahead, and the
  // random reads of page-table walks hit the page cache once warm.
  void* data =
      mmap(nullptr, size, PROT_READ | (options.writable ? PROT_WRITE : 0), MAP_SHARED, fd.fd, 0);
  if (data == MAP_FAILED) return OsError(path + ": cannot map");
  auto watch = std::make_unique<WatchedFile>(fd.fd, static_cast<std::byte*>(data), size,
                                             options.writable, st);
  if (Status s = RegisterWatchedFile(watch.get()); !s.ok()) {
    munmap(data, size);
    return s.WithContext(path);
  }
  fd.fd = -1;  // the WatchedFile has it now
  Status lease = options.lease ? TakeLease(*watch) : UnsupportedError("not asked for");
  return MappedFile(std::move(watch), std::move(lease));
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    watch_ = std::move(other.watch_);
    lease_ = std::move(other.lease_);
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::Reset() {
  if (!watch_) return;
  ReleaseLease(*watch_);
  UnregisterWatchedFile(watch_.get());
  munmap(watch_->base(), watch_->size());
  close(watch_->fd());
  watch_.reset();
}

std::vector<Fact> MappedFile::Describe() const {
  const WatchedFile& w = *watch_;
  std::vector<Fact> facts;
  if (w.stable()) {
    facts.push_back({"file-watch", "lease",
                     "the kernel tells vmemfs before another program opens the file for writing "
                     "or truncates it"});
  } else if (w.lease_broken_at() != 0) {
    facts.push_back({"file-watch", "checked at every read",
                     "the lease was broken at " + Time({w.lease_broken_at(), 0}) +
                         ": another program opened the file for writing or truncated it"});
  } else {
    facts.push_back({"file-watch", "checked at every read", "no lease: " + lease_.message()});
  }
  struct stat now;
  if (fstat(w.fd(), &now) != 0) {
    facts.push_back({"file-changed", "unknown", "fstat failed"});
  } else if (now.st_size != w.at_open().st_size ||
             now.st_mtim.tv_sec != w.at_open().st_mtim.tv_sec ||
             now.st_mtim.tv_nsec != w.at_open().st_mtim.tv_nsec) {
    facts.push_back({"file-changed", "yes",
                     "size " + std::to_string(w.at_open().st_size) + " -> " +
                         std::to_string(now.st_size) + ", mtime " + Time(w.at_open().st_mtim) +
                         " -> " + Time(now.st_mtim) + " (the file changed while mounted)"});
  }
  if (w.intact() < w.size()) {
    facts.push_back({"file-lost", "from " + Hex(w.intact()),
                     "bytes at and after this file offset are gone; reading them gives EIO"});
  }
  return facts;
}

}  // namespace vmemfs::drivers
