#include "fs/errno_map.h"

#include <atomic>
#include <cerrno>
#include <cstdio>

namespace vmemfs::fs {
namespace {

// A hostile guest can make every read fail; keep the log readable.
constexpr int kMaxLoggedErrors = 100;
std::atomic<int> logged_errors{0};

void Log(const Status& status) {
  int n = logged_errors.fetch_add(1, std::memory_order_relaxed);
  if (n < kMaxLoggedErrors) {
    fprintf(stderr, "vmemfs: %s\n", status.ToString().c_str());
  } else if (n == kMaxLoggedErrors) {
    fprintf(stderr, "vmemfs: further errors are not logged\n");
  }
}

}  // namespace

int ToErrno(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kOk:
      return 0;
    case ErrorCode::kNotFound:
      return ENOENT;
    case ErrorCode::kInvalidArgument:
      return EINVAL;
    case ErrorCode::kUnsupported:
      return EOPNOTSUPP;
    case ErrorCode::kNoMemory:
      return ENOMEM;
    case ErrorCode::kOs:
      Log(status);
      return status.os_errno() > 0 ? status.os_errno() : EIO;
    case ErrorCode::kFault:
    case ErrorCode::kBadData:
    case ErrorCode::kUnavailable:
      Log(status);
      return EIO;
  }
  return EIO;
}

}  // namespace vmemfs::fs
