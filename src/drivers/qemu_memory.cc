#include "drivers/qemu_memory.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/checked.h"
#include "drivers/proc_files.h"

namespace vmemfs::drivers {
namespace {

// One line of /proc/PID/maps.
struct MapEntry {
  uint64_t start, end;
  bool shared;
  uint64_t offset;
  unsigned dev_major, dev_minor;
  uint64_t inode;
  std::string path;
};

constexpr size_t kMaxMapsBytes = 64 << 20;

std::vector<MapEntry> ParseMaps(const std::string& text) {
  std::vector<MapEntry> entries;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    MapEntry e{};
    char perms[8] = {};
    int path_at = 0;
    if (sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n",
               &e.start, &e.end, perms, &e.offset, &e.dev_major, &e.dev_minor, &e.inode,
               &path_at) < 7) {
      continue;
    }
    e.shared = perms[3] == 's';
    if (path_at > 0) e.path = line.substr(static_cast<size_t>(path_at));
    entries.push_back(std::move(e));
  }
  return entries;
}

// The file extent that holds [hva, hva + size) in one or more adjacent VMAs of one file
// (QEMU's madvise calls can split a RAM mapping), or nullopt.
std::optional<MapEntry> SharedFileExtent(const std::vector<MapEntry>& maps, uint64_t hva,
                                         uint64_t size) {
  auto it = std::find_if(maps.begin(), maps.end(),
                         [&](const MapEntry& e) { return e.start <= hva && hva < e.end; });
  if (it == maps.end() || !it->shared || it->inode == 0) return std::nullopt;
  MapEntry extent = *it;
  extent.offset += hva - it->start;
  extent.start = hva;
  const uint64_t want_end = hva + size;
  for (auto next = it + 1; extent.end < want_end && next != maps.end(); ++next) {
    const bool continues = next->start == extent.end && next->shared &&
                           next->inode == extent.inode && next->dev_major == extent.dev_major &&
                           next->dev_minor == extent.dev_minor &&
                           next->offset == extent.offset + (next->start - extent.start);
    if (!continues) break;
    extent.end = next->end;
  }
  if (extent.end < want_end) return std::nullopt;
  extent.end = want_end;
  return extent;
}

bool SameFile(int fd, const MapEntry& e) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_ino == e.inode && major(st.st_dev) == e.dev_major &&
         minor(st.st_dev) == e.dev_minor;
}

// Opens the file behind `e` by its path, else (deleted, memfd, another mount namespace)
// through /proc/PID/map_files; checks it is the very file QEMU maps.
std::optional<MappedFile> OpenMappedFile(pid_t pid, const MapEntry& e, const MapEntry& vma,
                                         bool writable, std::string& path) {
  char map_files[96];
  snprintf(map_files, sizeof map_files, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, vma.start,
           vma.end);
  for (const std::string& candidate : {e.path, std::string(map_files)}) {
    if (candidate.empty() || candidate[0] != '/') continue;
    Result<MappedFile> file = MappedFile::Open(candidate, {.writable = writable});
    if (!file || !SameFile(file->fd(), e)) continue;
    if (!RangeWithin(e.offset, e.end - e.start, file->bytes().size())) continue;
    path = candidate;
    return *std::move(file);
  }
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<QemuMemory>> QemuMemory::Open(pid_t pid, std::vector<HostRange> ranges,
                                                     bool writable, RamAccess access) {
  if (kill(pid, 0) != 0 && errno == ESRCH) {
    return UnavailableError("QEMU process " + std::to_string(pid) + " does not exist");
  }
  std::unique_ptr<QemuMemory> memory(new QemuMemory(pid, writable));
  std::vector<Run> runs;
  for (const HostRange& r : ranges) runs.push_back(Run{r.start, r.end, {r.hva, r.readonly}});
  if (access == RamAccess::kAuto) VMEMFS_TRY(memory->MapSharedFiles(runs));
  VMEMFS_ASSIGN_OR_RETURN(memory->runs_, PhysMap<Backing>::Create(std::move(runs)));
  VMEMFS_TRY(memory->OpenProcessAccess(access));
  return memory;
}

QemuMemory::~QemuMemory() {
  if (mem_fd_ >= 0) close(mem_fd_);
}

// Sets the file of each run that QEMU maps from a file we can map too.
Status QemuMemory::MapSharedFiles(std::vector<Run>& runs) {
  const std::string maps_path = "/proc/" + std::to_string(pid_) + "/maps";
  VMEMFS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(maps_path, kMaxMapsBytes));
  const std::vector<MapEntry> maps = ParseMaps(text);
  for (Run& run : runs) {
    const uint64_t hva = run.value.hva;
    const std::optional<MapEntry> extent = SharedFileExtent(maps, hva, run.size());
    if (!extent) continue;
    auto same = std::find_if(files_.begin(), files_.end(),
                             [&](const File& f) { return SameFile(f.map.fd(), *extent); });
    if (same == files_.end()) {
      const MapEntry& vma = *std::find_if(maps.begin(), maps.end(), [&](const MapEntry& e) {
        return e.start <= hva && hva < e.end;
      });
      std::string path;
      std::optional<MappedFile> file = OpenMappedFile(pid_, *extent, vma, writable_, path);
      if (!file) continue;
      files_.push_back(File{std::move(path), *std::move(file)});
      same = files_.end() - 1;
    }
    if (!RangeWithin(extent->offset, run.size(), same->map.bytes().size())) continue;
    run.value.file = static_cast<int>(same - files_.begin());
    run.value.file_offset = extent->offset;
  }
  return Status();
}

Status QemuMemory::OpenProcessAccess(RamAccess access) {
  const auto unmapped =
      std::find_if(runs_.begin(), runs_.end(), [](const Run& r) { return r.value.file < 0; });
  if (unmapped == runs_.end()) return Status();
  if (access != RamAccess::kProcMem) {
    // Probe one byte: process_vm_readv may be refused (seccomp, old kernel, no ptrace right).
    std::byte probe;
    struct iovec local = {&probe, 1}, remote = {reinterpret_cast<void*>(unmapped->value.hva), 1};
    if (process_vm_readv(pid_, &local, 1, &remote, 1, 0) == 1) return Status();
    if (errno == ESRCH) return Gone();
    if (access == RamAccess::kProcessVm || (errno != EPERM && errno != ENOSYS)) {
      return OsError("process_vm_readv of QEMU pid " + std::to_string(pid_));
    }
  }
  const std::string path = "/proc/" + std::to_string(pid_) + "/mem";
  mem_fd_ = open(path.c_str(), (writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (mem_fd_ < 0) return OsError(path + ": cannot open");
  return Status();
}

std::byte* QemuMemory::FileMemory(const Run& run, uint64_t pa) const {
  return files_[run.value.file].map.bytes().data() + run.value.file_offset + (pa - run.start);
}

Status QemuMemory::Read(uint64_t pa, std::span<std::byte> out) {
  return Transfer(pa, out.data(), out.size(), /*write=*/false);
}

Status QemuMemory::Write(uint64_t pa, std::span<const std::byte> in) {
  if (!writable_) return UnsupportedError("QEMU memory opened read-only");
  // Transfer only reads from the buffer when writing.
  return Transfer(pa, const_cast<std::byte*>(in.data()), in.size(), /*write=*/true);
}

Status QemuMemory::Transfer(uint64_t pa, std::byte* buf, size_t len, bool write) {
  if (gone()) return Gone();
  return runs_.ForEachPiece(pa, len, [&](const Run& run, uint64_t at, uint64_t done, uint64_t n) {
    if (write && run.value.readonly) return FaultError(at, "guest ROM is read-only");
    if (run.value.file < 0) {
      return TransferProcess(run.value.hva + (at - run.start), buf + done, n, write, at);
    }
    std::byte* mem = FileMemory(run, at);
    write ? std::memcpy(mem, buf + done, n) : std::memcpy(buf + done, mem, n);
    // Someone cut QEMU's RAM file short: the lost bytes read as zeros (file_watch.h).
    return files_[run.value.file].map.watch().Check(run.value.file_offset + (at - run.start), n);
  });
}

Status QemuMemory::TransferProcess(uint64_t hva, std::byte* buf, size_t len, bool write,
                                   uint64_t pa) {
  while (len > 0) {
    ssize_t n;
    if (mem_fd_ >= 0) {
      n = write ? pwrite(mem_fd_, buf, len, static_cast<off_t>(hva))
                : pread(mem_fd_, buf, len, static_cast<off_t>(hva));
    } else {
      struct iovec local = {buf, len}, remote = {reinterpret_cast<void*>(hva), len};
      n = write ? process_vm_writev(pid_, &local, 1, &remote, 1, 0)
                : process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    }
    if (n < 0 && errno == EINTR) continue;
    // /proc/PID/mem of an exited process reads as end of file.
    if ((n < 0 && errno == ESRCH) || (n == 0 && mem_fd_ >= 0)) {
      MarkGone();
      return Gone();
    }
    if (n <= 0)
      return Status(
          ErrorCode::kOs,
          "QEMU pid " + std::to_string(pid_) + ": cannot access guest RAM: " + strerror(errno),
          errno, pa);
    buf += n;
    hva += static_cast<uint64_t>(n);
    pa += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return Status();
}

std::span<const std::byte> QemuMemory::Mapped(uint64_t pa) const {
  const Run* run = gone() ? nullptr : runs_.Find(pa);
  if (run == nullptr || run->value.file < 0) return {};
  return {FileMemory(*run, pa), static_cast<size_t>(run->end - pa)};
}

std::optional<FileExtent> QemuMemory::FileBacked(uint64_t pa) const {
  const Run* run = gone() ? nullptr : runs_.Find(pa);
  if (run == nullptr || run->value.file < 0) return std::nullopt;
  return FileExtent{files_[run->value.file].map.fd(), run->value.file_offset + (pa - run->start),
                    run->end - pa};
}

std::string QemuMemory::method() const {
  std::string s;
  for (const File& f : files_) s += (s.empty() ? "" : ", ") + ("shared file " + f.path);
  if (all_mapped()) return s;
  const std::string process = mem_fd_ >= 0 ? "/proc/" + std::to_string(pid_) + "/mem"
                                           : "process_vm_readv (pid " + std::to_string(pid_) + ")";
  return s.empty() ? process : s + ", " + process;
}

bool QemuMemory::all_mapped() const {
  return std::all_of(runs_.begin(), runs_.end(), [](const Run& r) { return r.value.file >= 0; });
}

Status QemuMemory::Gone() const {
  return UnavailableError("QEMU process " + std::to_string(pid_) + " is gone");
}

}  // namespace vmemfs::drivers
