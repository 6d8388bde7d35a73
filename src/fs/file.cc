#include "fs/file.h"

namespace vmemfs::fs {

Result<size_t> Handle::Write(uint64_t, std::span<const std::byte>) {
  return UnsupportedError("file is not writable");
}

}  // namespace vmemfs::fs
