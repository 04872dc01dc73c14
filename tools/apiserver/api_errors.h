// Kubernetes API errors as the test API server returns them: metav1.Status bodies with the same
// codes, reasons, message formats and details as kube-apiserver (k8s.io/apimachinery errors and
// field.Error formatting), so clients see identical failures from both servers.
//
// Thread contract: value types.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tools::apiserver {

// field.ErrorType; the cause type in a Status is "FieldValue" + the name (see CauseType()).
enum class FieldErrorType {
  kNotFound,
  kRequired,
  kDuplicate,
  kInvalid,
  kNotSupported,
  kForbidden,
  kTooLong,
  kTooMany,
  kInternal,
  kTypeInvalid,
};

// One field validation error, formatted like k8s.io/apimachinery/pkg/util/validation/field.
struct FieldError {
  FieldErrorType type = FieldErrorType::kInvalid;
  std::string field;  // "spec.members[0].role"
  std::string value;  // already in Go's print form ("\"primary\"", "0"); empty: not shown
  std::string detail;

  static FieldError Required(std::string field, std::string detail = {});
  static FieldError Invalid(std::string field, std::string value, std::string detail);
  static FieldError TypeInvalid(std::string field, std::string value, std::string detail);
  // `supported` are already-rendered values; they are shown quoted.
  static FieldError NotSupported(std::string field, std::string value,
                                 const std::vector<std::string>& supported);
  static FieldError Duplicate(std::string field, std::string value);
  static FieldError Forbidden(std::string field, std::string detail);
  static FieldError TooLong(std::string field, long long max_length);
  static FieldError TooMany(std::string field, long long actual, long long max_items);

  // "Unsupported value: 1024: supported values: \"512\", \"4096\"".
  std::string Body() const;
  // "spec.sectorSize: " + Body().
  std::string ToString() const;
  // "FieldValueNotSupported", ...
  std::string CauseType() const;
};

struct StatusCause {
  std::string reason;  // "FieldValueInvalid", ...
  std::string message;
  std::string field;
};

// A failed request: the metav1.Status body and its HTTP code.
struct ApiError {
  int code = 500;
  std::string reason;  // NotFound, AlreadyExists, Conflict, Invalid, ...; empty: Unknown
  std::string message;
  bool has_details = false;
  std::string name;
  std::string group;
  std::string kind;  // the resource (plural) for NotFound/AlreadyExists/Conflict, Kind for Invalid
  std::string uid;
  std::vector<StatusCause> causes;
  int retry_after_seconds = 0;
  std::string continue_token;  // metadata.continue of an Expired list

  // {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...,"code":N}.
  std::string ToJson() const;
};

// Every metav1.Status body the server sends: "status" is "Failure" (ApiError::ToJson) or
// "Success" (the fields of `e` that are set: a Success carries no message unless given, and no
// "code" when e.code is 0).
std::string StatusJson(std::string_view status, const ApiError& e);

namespace errors {

// `resource` is the plural; `group` "" for the core group.
ApiError NotFound(std::string_view group, std::string_view resource, std::string_view name);
ApiError AlreadyExists(std::string_view group, std::string_view resource, std::string_view name);
// "Operation cannot be fulfilled on <resource> \"<name>\": <why>".
ApiError Conflict(std::string_view group, std::string_view resource, std::string_view name,
                  std::string_view why);
// The optimistic-lock conflict: "... the object has been modified; please apply your changes to
// the latest version and try again".
ApiError ObjectModified(std::string_view group, std::string_view resource, std::string_view name);
// "<Kind>.<group> \"<name>\" is invalid: <errors>" with one cause per error.
ApiError Invalid(std::string_view group, std::string_view kind, std::string_view name,
                 const std::vector<FieldError>& errors);
ApiError Forbidden(std::string_view group, std::string_view resource, std::string_view name,
                   std::string_view why);
ApiError BadRequest(std::string message);
ApiError MethodNotAllowed();
ApiError UnsupportedMediaType(std::string message);
// 410 with reason Expired (a resourceVersion or continue token that is too old).
ApiError Expired(std::string message);
// 410 with reason Gone.
ApiError Gone(std::string message);
ApiError Internal(std::string message);
ApiError TooManyRequests(std::string message, int retry_after_seconds);
ApiError ServiceUnavailable(std::string message);
// 504 with reason Timeout.
ApiError Timeout(std::string message, int retry_after_seconds);
// 422 the way kube-apiserver reports a JSON patch that cannot be applied.
ApiError UnprocessablePatch(std::string message);
// The resource path is unknown: 404 "the server could not find the requested resource".
ApiError UnknownResource();
// A Status for an arbitrary HTTP code (fault injection), with the reason kube-apiserver uses.
ApiError FromCode(int code, std::string message, int retry_after_seconds);

}  // namespace errors

}  // namespace tools::apiserver
