#include "drivers/proc_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace vmemfs::drivers {

Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OsError(path + ": cannot open");
  std::string text;
  char buf[65536];
  while (text.size() < limit) {
    const ssize_t n = read(fd, buf, std::min(sizeof buf, limit - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status error = OsError(path + ": cannot read");
      close(fd);
      return error;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

std::optional<pid_t> ParsePid(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (ec != std::errc() || end == text.data() || pid <= 0) return std::nullopt;
  return pid;
}

Result<pid_t> ProcessOfThread(int64_t tid) {
  const std::string path = "/proc/" + std::to_string(tid) + "/status";
  VMEMFS_ASSIGN_OR_RETURN(std::string status, ReadSmallFile(path));
  const size_t at = status.find("\nTgid:");
  const std::optional<pid_t> tgid =
      at == std::string::npos ? std::nullopt : ParsePid(std::string_view(status).substr(at + 6));
  if (!tgid) return BadDataError(path + ": no Tgid");
  return *tgid;
}

}  // namespace vmemfs::drivers
