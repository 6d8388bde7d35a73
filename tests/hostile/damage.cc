#include "damage.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>

#include "mount_fixture.h"

namespace vmemfs::testing {

const std::string& CoreBytes(const std::string& guest) {
  static std::map<std::string, std::string> cores;
  auto [it, inserted] = cores.try_emplace(guest);
  if (inserted) it->second = ReadFile(GuestDir(guest) + "/core.elf");
  return it->second;
}

std::optional<uint64_t> VmcoreinfoSymbol(const std::string& guest, const std::string& name) {
  const std::string key = "SYMBOL(" + name + ")=";
  const std::string& core = CoreBytes(guest);
  size_t at = core.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(core.substr(at + key.size(), 16), nullptr, 16);
}

uint64_t KmemOffset(const std::string& guest, uint64_t va) {
  const int bits = guest == "l5" ? 57 : 48;
  return va & ((1ull << bits) - 1);
}

std::optional<uint64_t> CoreOffsetOfKernelVa(const std::string& guest, const std::string& kmem,
                                             uint64_t va) {
  const uint64_t page = va & ~0xfffull;
  std::string bytes = PreadAt(kmem, KmemOffset(guest, page), 4096);
  if (bytes.size() != 4096) return std::nullopt;
  const std::string& core = CoreBytes(guest);
  size_t at = core.find(bytes);
  if (at == std::string::npos || core.find(bytes, at + 1) != std::string::npos) {
    return std::nullopt;  // absent, or not unique: no safe place to damage
  }
  return at + (va - page);
}

bool CopyCore(const std::string& guest, const std::string& path) {
  std::error_code ec;
  return std::filesystem::copy_file(GuestDir(guest) + "/core.elf", path,
                                    std::filesystem::copy_options::overwrite_existing, ec);
}

bool Patch(const std::string& path, uint64_t offset, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size());
  close(fd);
  return ok;
}

std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

}  // namespace vmemfs::testing
