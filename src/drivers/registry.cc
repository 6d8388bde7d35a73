#include "drivers/registry.h"

#include <span>

#include "drivers/snapshot_driver.h"

namespace vmemfs::drivers {
namespace {

// A live backend reached through "SCHEME:REST"; `open` gets REST.
struct Backend {
  std::string_view scheme;
  std::string_view usage;  // for --help, e.g. "qemu:SOCKET"
  std::string_view description;
  Result<std::unique_ptr<Driver>> (*open)(std::string_view rest, const OpenOptions& options);
};

// Live drivers add one line each here.
const std::vector<Backend>& Backends() {
  static const std::vector<Backend> kBackends = {};
  return kBackends;
}

// The backend whose scheme is spec's prefix before the first ':', if any. A path such as
// "dumps/vm:1.elf" has no registered scheme before its ':' and stays a path.
const Backend* FindBackend(std::string_view spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return nullptr;
  const std::string_view scheme = spec.substr(0, colon);
  for (const Backend& b : Backends()) {
    if (b.scheme == scheme) return &b;
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<Driver>> OpenSource(std::string_view spec, const OpenOptions& options) {
  if (spec.empty()) return InvalidArgumentError("empty source");
  if (const Backend* b = FindBackend(spec)) {
    Result<std::unique_ptr<Driver>> driver = b->open(spec.substr(b->scheme.size() + 1), options);
    if (!driver) return driver.error().WithContext(spec);
    return driver;
  }
  return OpenSnapshot(std::string(spec), options);
}

std::vector<std::string> DescribeBackends() {
  std::vector<std::string> lines;
  for (const Backend& b : Backends()) {
    lines.push_back(std::string(b.usage) + "  " + std::string(b.description));
  }
  lines.push_back("PATH  snapshot file: raw, ELF core (QEMU dump-guest-memory) or LiME");
  return lines;
}

}  // namespace vmemfs::drivers
