#include "common/status/status.h"

#include <cerrno>
#include <cstring>

namespace common {
namespace {

const std::string& EmptyString() {
  static const std::string* const kEmpty = new std::string();
  return *kEmpty;
}

// Names like "ENOENT" keep messages greppable; strerror gives the human part.
const char* ErrnoName(int e) {
  switch (e) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case EINTR:
      return "EINTR";
    case EIO:
      return "EIO";
    case ENXIO:
      return "ENXIO";
    case EBADF:
      return "EBADF";
    case EAGAIN:
      return "EAGAIN";
    case ENOMEM:
      return "ENOMEM";
    case EACCES:
      return "EACCES";
    case EBUSY:
      return "EBUSY";
    case EEXIST:
      return "EEXIST";
    case ENODEV:
      return "ENODEV";
    case ENOTDIR:
      return "ENOTDIR";
    case EISDIR:
      return "EISDIR";
    case EINVAL:
      return "EINVAL";
    case ENOSPC:
      return "ENOSPC";
    case EROFS:
      return "EROFS";
    case ENOTSUP:
      return "ENOTSUP";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case EADDRINUSE:
      return "EADDRINUSE";
    case ENOTEMPTY:
      return "ENOTEMPTY";
    default:
      return "errno";
  }
}

}  // namespace

std::string StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return fmt::format("UNKNOWN_CODE({})", static_cast<int>(code));
}

StatusCode StatusCodeFromInt(int value) {
  if (value < 0 || value > 16) return StatusCode::kUnknown;
  return static_cast<StatusCode>(value);
}

Status::Status(StatusCode code, std::string message, std::string detail) {
  if (code == StatusCode::kOk) return;  // OK never carries a message.
  rep_ = std::make_unique<Rep>(Rep{code, std::move(message), std::move(detail)});
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  return *this;
}

const std::string& Status::message() const { return rep_ ? rep_->message : EmptyString(); }
const std::string& Status::detail() const { return rep_ ? rep_->detail : EmptyString(); }

Status Status::WithContext(std::string_view context) const {
  if (ok()) return Status();
  return Status(rep_->code, fmt::format("{}: {}", context, rep_->message), rep_->detail);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  if (rep_->detail.empty()) return fmt::format("{}: {}", StatusCodeName(rep_->code), rep_->message);
  return fmt::format("{}: {} [{}]", StatusCodeName(rep_->code), rep_->message, rep_->detail);
}

bool Status::IsRetryable() const {
  switch (code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kAborted:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message() && a.detail() == b.detail();
}

Status ErrnoToStatus(int errno_value, std::string_view what) {
  StatusCode code;
  switch (errno_value) {
    case 0:
      return Status();
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EPERM:
    case EACCES:
      code = StatusCode::kPermissionDenied;
      break;
    case EINVAL:
      code = StatusCode::kInvalidArgument;
      break;
    case EBUSY:
      code = StatusCode::kFailedPrecondition;
      break;
    case EAGAIN:
    case ETIMEDOUT:
    case ECONNREFUSED:
      code = StatusCode::kUnavailable;
      break;
    case ENOSPC:
      code = StatusCode::kResourceExhausted;
      break;
    default:
      code = StatusCode::kInternal;
      break;
  }
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be buf.
  const char* text = strerror_r(errno_value, buf, sizeof(buf));
  return Status(code, fmt::format("{}: {} ({})", what, text, ErrnoName(errno_value)),
                std::to_string(errno_value));
}

Status HttpToStatus(int http_code, bool is_create, std::string message, std::string reason) {
  if (http_code >= 200 && http_code < 300) return Status();
  StatusCode code;
  switch (http_code) {
    case 400:
      code = StatusCode::kInvalidArgument;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
      code = StatusCode::kNotFound;
      break;
    case 405:
      code = StatusCode::kUnimplemented;
      break;
    case 409:
      code = is_create ? StatusCode::kAlreadyExists : StatusCode::kAborted;
      break;
    case 410:
      code = StatusCode::kOutOfRange;
      break;  // resourceVersion too old: relist
    case 413:
      code = StatusCode::kInvalidArgument;
      break;
    case 415:
      code = StatusCode::kInvalidArgument;
      break;
    case 422:
      code = StatusCode::kInvalidArgument;
      break;
    case 429:
      code = StatusCode::kUnavailable;
      break;
    case 504:
      code = StatusCode::kDeadlineExceeded;
      break;
    default:
      code = http_code >= 500 ? StatusCode::kUnavailable : StatusCode::kUnknown;
      break;
  }
  // A 409 on create that the server calls "Conflict" is still a resourceVersion clash.
  if (http_code == 409 && is_create && reason == "Conflict") code = StatusCode::kAborted;
  if (message.empty()) message = fmt::format("HTTP {}", http_code);
  return Status(code, std::move(message), std::move(reason));
}

}  // namespace common
