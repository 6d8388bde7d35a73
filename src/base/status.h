// Status and Result<T>: the one error idiom of every vmemfs layer.
//
// A Status is OK or an error with a code, a message, an errno (for kOs) and an address (for
// kFault). OK is a null pointer, so returning success costs one compare on the read path.
// Result<T> holds a T or an error Status; its accessors follow std::expected's names so a move
// to C++23 is a rename.
//
// Bugs assert; anything derived from guest memory or a snapshot reports a Status instead.
#ifndef VMEMFS_BASE_STATUS_H_
#define VMEMFS_BASE_STATUS_H_

#include <cassert>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace vmemfs {

enum class ErrorCode : uint8_t {
  kOk = 0,
  kNotFound,         // no such object (symbol, process, file)
  kFault,            // an address that cannot be read: unmapped, outside RAM
  kBadData,          // corrupt or implausible input (snapshot, guest structure)
  kInvalidArgument,  // a caller's mistake
  kUnsupported,      // valid, but this build or backend cannot do it
  kOs,               // a system call failed; errno() tells which
  kUnavailable,      // the backend is gone (VM destroyed, connection lost)
  kNoMemory,
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // OK
  Status(ErrorCode code, std::string message, int os_errno = 0, uint64_t address = 0);

  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  ErrorCode code() const { return rep_ ? rep_->code : ErrorCode::kOk; }
  const std::string& message() const;
  int os_errno() const { return rep_ ? rep_->os_errno : 0; }
  uint64_t address() const { return rep_ ? rep_->address : 0; }

  // "<code>: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    ErrorCode code;
    int os_errno;
    uint64_t address;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

// Constructors named after the codes, as in abseil.
Status NotFoundError(std::string message);
Status FaultError(uint64_t address, std::string message = {});
Status BadDataError(std::string message);
Status InvalidArgumentError(std::string message);
Status UnsupportedError(std::string message);
// Uses the current errno unless one is given.
Status OsError(std::string message, int os_errno = -1);
Status UnavailableError(std::string message);
Status NoMemoryError();

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  // From anything a T can be made of, as std::expected: a Result<std::optional<X>> from an X.
  template <typename U, typename = std::enable_if_t<
                            !std::is_same_v<std::decay_t<U>, T> &&
                            !std::is_same_v<std::decay_t<U>, Status> &&
                            !std::is_same_v<std::decay_t<U>, Result> &&
                            std::is_constructible_v<T, U&&>>>
  Result(U&& value) : v_(T(std::forward<U>(value))) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "a Result needs a value or an error");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& error() const { return std::get<Status>(v_); }
  // The error, or OK when there is a value.
  Status status() const { return has_value() ? Status() : error(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vmemfs

#define VMEMFS_CONCAT_INNER_(a, b) a##b
#define VMEMFS_CONCAT_(a, b) VMEMFS_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is an error.
#define VMEMFS_TRY(expr)                                     \
  do {                                                       \
    ::vmemfs::Status vmemfs_try_status_ = (expr);            \
    if (!vmemfs_try_status_.ok()) return vmemfs_try_status_; \
  } while (0)

// `lhs = *result` if `rexpr` yields a value, else returns its error.
#define VMEMFS_ASSIGN_OR_RETURN(lhs, rexpr) \
  VMEMFS_ASSIGN_OR_RETURN_IMPL_(VMEMFS_CONCAT_(vmemfs_result_, __LINE__), lhs, rexpr)
#define VMEMFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.has_value()) return tmp.error();            \
  lhs = std::move(*tmp)

#endif  // VMEMFS_BASE_STATUS_H_
