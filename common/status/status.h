// Status and Result<T>: the one error type of the project.
//
// A Status is a canonical gRPC code, a message, and an optional detail (an errno value, or a
// Kubernetes reason such as "Conflict"). The codes are the gRPC canonical codes, so the CSI shim
// returns them as they are. OK carries no allocation. Result<T> holds either a T or a non-OK
// Status (std::expected is C++23). Both are [[nodiscard]].
//
// Thread contract: value types; a const Status/Result may be read from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace common {

// Values are the gRPC canonical codes (google.rpc.Code).
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc., as gRPC spells them; "UNKNOWN_CODE(n)" for values out of range.
std::string StatusCodeName(StatusCode code);

// Maps an integer to a StatusCode; values outside 0..16 become kUnknown.
StatusCode StatusCodeFromInt(int value);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string detail = {});

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty for OK.
  const std::string& message() const;
  // errno value or Kubernetes reason; empty when none.
  const std::string& detail() const;

  // A copy of this status whose message is prefixed with "context: ". OK stays OK.
  Status WithContext(std::string_view context) const;

  // "NOT_FOUND: message [detail]" or "OK".
  std::string ToString() const;

  // Codes a caller may retry without changing its request.
  bool IsRetryable() const;

  friend bool operator==(const Status& a, const Status& b);

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    std::string detail;
  };
  std::unique_ptr<Rep> rep_;
};

inline Status OkStatus() { return Status(); }

// Shorthands that format their message with fmt (format strings are checked at compile time).
#define MESHSTOR_STATUS_HELPER(Name, Code)                                             \
  template <typename... Args>                                                          \
  Status Name(fmt::format_string<Args...> format, Args&&... args) {                    \
    return Status(StatusCode::Code, fmt::format(format, std::forward<Args>(args)...)); \
  }
MESHSTOR_STATUS_HELPER(InvalidArgumentError, kInvalidArgument)
MESHSTOR_STATUS_HELPER(NotFoundError, kNotFound)
MESHSTOR_STATUS_HELPER(AlreadyExistsError, kAlreadyExists)
MESHSTOR_STATUS_HELPER(FailedPreconditionError, kFailedPrecondition)
MESHSTOR_STATUS_HELPER(AbortedError, kAborted)
MESHSTOR_STATUS_HELPER(UnavailableError, kUnavailable)
MESHSTOR_STATUS_HELPER(InternalError, kInternal)
MESHSTOR_STATUS_HELPER(DeadlineExceededError, kDeadlineExceeded)
MESHSTOR_STATUS_HELPER(PermissionDeniedError, kPermissionDenied)
MESHSTOR_STATUS_HELPER(UnimplementedError, kUnimplemented)
MESHSTOR_STATUS_HELPER(OutOfRangeError, kOutOfRange)
MESHSTOR_STATUS_HELPER(ResourceExhaustedError, kResourceExhausted)
MESHSTOR_STATUS_HELPER(DataLossError, kDataLoss)
#undef MESHSTOR_STATUS_HELPER

// Converts an errno value into a Status; the errno name and text go into the message and the
// number into detail. ENOENT → NotFound, EEXIST → AlreadyExists, EPERM/EACCES →
// PermissionDenied, EINVAL → InvalidArgument, EBUSY → FailedPrecondition, EAGAIN/ETIMEDOUT →
// Unavailable, anything else → Internal.
Status ErrnoToStatus(int errno_value, std::string_view what);

// Maps an HTTP response code of the Kubernetes API to a Status. `is_create` turns 409 into
// AlreadyExists (a name clash) instead of Aborted (a resourceVersion conflict).
// 2xx → OK, 400 → InvalidArgument, 401 → Unauthenticated, 403 → PermissionDenied,
// 404 → NotFound, 409 → AlreadyExists/Aborted, 410 → OutOfRange (expired resourceVersion),
// 422 → InvalidArgument, 429 and 5xx → Unavailable, 504 → DeadlineExceeded... (see .cc).
Status HttpToStatus(int http_code, bool is_create, std::string message, std::string reason = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  // Implicit from a value or from a non-OK Status, so `return value;` and `return status;` work.
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) {
      v_ = Status(StatusCode::kInternal, "Result constructed from an OK Status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace common

#define MESHSTOR_CONCAT_INNER(a, b) a##b
#define MESHSTOR_CONCAT(a, b) MESHSTOR_CONCAT_INNER(a, b)

// Returns the Status from the current function when `expr` is not OK. The temporaries get unique
// names (__COUNTER__) so the macros nest, e.g. inside a lambda passed to another RETURN_IF_ERROR.
#define RETURN_IF_ERROR(expr) \
  RETURN_IF_ERROR_IMPL(MESHSTOR_CONCAT(meshstor_status_, __COUNTER__), expr)
#define RETURN_IF_ERROR_IMPL(tmp, expr) \
  do {                                  \
    ::common::Status tmp = (expr);      \
    if (!tmp.ok()) return tmp;          \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(MESHSTOR_CONCAT(meshstor_result_, __COUNTER__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
