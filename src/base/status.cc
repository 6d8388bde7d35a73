#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace vmemfs {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kFault:
      return "fault";
    case ErrorCode::kBadData:
      return "bad data";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kOs:
      return "system error";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kNoMemory:
      return "out of memory";
  }
  return "unknown";
}

Status::Status(ErrorCode code, std::string message, int os_errno, uint64_t address) {
  assert(code != ErrorCode::kOk);
  rep_ = std::make_unique<Rep>(Rep{code, os_errno, address, std::move(message)});
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(ErrorCodeName(rep_->code));
  if (!rep_->message.empty()) {
    s += ": ";
    s += rep_->message;
  }
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return Status();
  Status copy = *this;
  std::string msg(context);
  if (!copy.rep_->message.empty()) msg += ": " + copy.rep_->message;
  copy.rep_->message = std::move(msg);
  return copy;
}

Status NotFoundError(std::string message) {
  return Status(ErrorCode::kNotFound, std::move(message));
}

Status FaultError(uint64_t address, std::string message) {
  if (message.empty()) {
    char buf[64];
    snprintf(buf, sizeof buf, "cannot read address 0x%llx", (unsigned long long)address);
    message = buf;
  }
  return Status(ErrorCode::kFault, std::move(message), 0, address);
}

Status BadDataError(std::string message) { return Status(ErrorCode::kBadData, std::move(message)); }

Status InvalidArgumentError(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

Status UnsupportedError(std::string message) {
  return Status(ErrorCode::kUnsupported, std::move(message));
}

Status OsError(std::string message, int os_errno) {
  if (os_errno < 0) os_errno = errno;
  message += ": ";
  message += strerror(os_errno);
  return Status(ErrorCode::kOs, std::move(message), os_errno);
}

Status UnavailableError(std::string message) {
  return Status(ErrorCode::kUnavailable, std::move(message));
}

Status NoMemoryError() { return Status(ErrorCode::kNoMemory, "out of memory"); }

}  // namespace vmemfs
