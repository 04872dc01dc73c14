#include "tools/apiserver/api_errors.h"

#include <set>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tools::apiserver {
namespace {

std::string QualifiedResource(std::string_view group, std::string_view resource) {
  if (group.empty()) return std::string(resource);
  return fmt::format("{}.{}", resource, group);
}

ApiError Make(int code, std::string reason, std::string message) {
  ApiError e;
  e.code = code;
  e.reason = std::move(reason);
  e.message = std::move(message);
  return e;
}

ApiError WithDetails(ApiError e, std::string_view group, std::string_view kind,
                     std::string_view name) {
  e.has_details = true;
  e.group = std::string(group);
  e.kind = std::string(kind);
  e.name = std::string(name);
  return e;
}

}  // namespace

FieldError FieldError::Required(std::string field, std::string detail) {
  return {FieldErrorType::kRequired, std::move(field), {}, std::move(detail)};
}
FieldError FieldError::Invalid(std::string field, std::string value, std::string detail) {
  return {FieldErrorType::kInvalid, std::move(field), std::move(value), std::move(detail)};
}
FieldError FieldError::TypeInvalid(std::string field, std::string value, std::string detail) {
  return {FieldErrorType::kTypeInvalid, std::move(field), std::move(value), std::move(detail)};
}
FieldError FieldError::NotSupported(std::string field, std::string value,
                                    const std::vector<std::string>& supported) {
  std::string detail;
  if (!supported.empty()) {
    detail = "supported values: ";
    for (size_t i = 0; i < supported.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += "\"" + supported[i] + "\"";
    }
  }
  return {FieldErrorType::kNotSupported, std::move(field), std::move(value), std::move(detail)};
}
FieldError FieldError::Duplicate(std::string field, std::string value) {
  return {FieldErrorType::kDuplicate, std::move(field), std::move(value), {}};
}
FieldError FieldError::Forbidden(std::string field, std::string detail) {
  return {FieldErrorType::kForbidden, std::move(field), {}, std::move(detail)};
}
FieldError FieldError::TooLong(std::string field, long long max_length) {
  return {FieldErrorType::kTooLong,
          std::move(field),
          {},
          fmt::format("may not be longer than {}", max_length)};
}
FieldError FieldError::TooMany(std::string field, long long actual, long long max_items) {
  return {FieldErrorType::kTooMany, std::move(field), std::to_string(actual),
          fmt::format("must have at most {} items", max_items)};
}

std::string FieldError::Body() const {
  std::string s;
  bool shows_value = true;
  switch (type) {
    case FieldErrorType::kNotFound:
      s = "Not found";
      break;
    case FieldErrorType::kRequired:
      s = "Required value";
      shows_value = false;
      break;
    case FieldErrorType::kDuplicate:
      s = "Duplicate value";
      break;
    case FieldErrorType::kInvalid:
    case FieldErrorType::kTypeInvalid:
      s = "Invalid value";
      break;
    case FieldErrorType::kNotSupported:
      s = "Unsupported value";
      break;
    case FieldErrorType::kForbidden:
      s = "Forbidden";
      shows_value = false;
      break;
    case FieldErrorType::kTooLong:
      s = "Too long";
      shows_value = false;
      break;
    case FieldErrorType::kTooMany:
      s = "Too many";
      break;
    case FieldErrorType::kInternal:
      s = "Internal error";
      shows_value = false;
      break;
  }
  if (shows_value && !value.empty()) s += ": " + value;
  if (!detail.empty()) s += ": " + detail;
  return s;
}

std::string FieldError::ToString() const { return field + ": " + Body(); }

std::string FieldError::CauseType() const {
  switch (type) {
    case FieldErrorType::kNotFound:
      return "FieldValueNotFound";
    case FieldErrorType::kRequired:
      return "FieldValueRequired";
    case FieldErrorType::kDuplicate:
      return "FieldValueDuplicate";
    case FieldErrorType::kInvalid:
      return "FieldValueInvalid";
    case FieldErrorType::kNotSupported:
      return "FieldValueNotSupported";
    case FieldErrorType::kForbidden:
      return "FieldValueForbidden";
    case FieldErrorType::kTooLong:
      return "FieldValueTooLong";
    case FieldErrorType::kTooMany:
      return "FieldValueTooMany";
    case FieldErrorType::kInternal:
      return "InternalError";
    case FieldErrorType::kTypeInvalid:
      return "FieldValueTypeInvalid";
  }
  return "FieldValueInvalid";
}

std::string ApiError::ToJson() const { return StatusJson("Failure", *this); }

std::string StatusJson(std::string_view status, const ApiError& e) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("Status");
  w.Key("apiVersion");
  w.String("v1");
  w.Key("metadata");
  w.StartObject();
  if (!e.continue_token.empty()) {
    w.Key("continue");
    w.String(e.continue_token);
  }
  w.EndObject();
  w.Key("status");
  w.String(status.data(), static_cast<rapidjson::SizeType>(status.size()));
  if (status == "Failure" || !e.message.empty()) {
    w.Key("message");
    w.String(e.message);
  }
  if (!e.reason.empty()) {
    w.Key("reason");
    w.String(e.reason);
  }
  if (e.has_details || !e.causes.empty() || e.retry_after_seconds > 0) {
    w.Key("details");
    w.StartObject();
    if (!e.name.empty()) {
      w.Key("name");
      w.String(e.name);
    }
    if (!e.group.empty()) {
      w.Key("group");
      w.String(e.group);
    }
    if (!e.kind.empty()) {
      w.Key("kind");
      w.String(e.kind);
    }
    if (!e.uid.empty()) {
      w.Key("uid");
      w.String(e.uid);
    }
    if (!e.causes.empty()) {
      w.Key("causes");
      w.StartArray();
      for (const StatusCause& c : e.causes) {
        w.StartObject();
        if (!c.reason.empty()) {
          w.Key("reason");
          w.String(c.reason);
        }
        if (!c.message.empty()) {
          w.Key("message");
          w.String(c.message);
        }
        if (!c.field.empty()) {
          w.Key("field");
          w.String(c.field);
        }
        w.EndObject();
      }
      w.EndArray();
    }
    if (e.retry_after_seconds > 0) {
      w.Key("retryAfterSeconds");
      w.Int(e.retry_after_seconds);
    }
    w.EndObject();
  }
  if (e.code != 0) {
    w.Key("code");
    w.Int(e.code);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

namespace errors {

ApiError NotFound(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      Make(404, "NotFound",
           fmt::format("{} \"{}\" not found", QualifiedResource(group, resource), name)),
      group, resource, name);
}

ApiError AlreadyExists(std::string_view group, std::string_view resource, std::string_view name) {
  return WithDetails(
      Make(409, "AlreadyExists",
           fmt::format("{} \"{}\" already exists", QualifiedResource(group, resource), name)),
      group, resource, name);
}

ApiError Conflict(std::string_view group, std::string_view resource, std::string_view name,
                  std::string_view why) {
  return WithDetails(Make(409, "Conflict",
                          fmt::format("Operation cannot be fulfilled on {} \"{}\": {}",
                                      QualifiedResource(group, resource), name, why)),
                     group, resource, name);
}

ApiError ObjectModified(std::string_view group, std::string_view resource, std::string_view name) {
  return Conflict(group, resource, name,
                  "the object has been modified; please apply your changes to the latest version "
                  "and try again");
}

ApiError Invalid(std::string_view group, std::string_view kind, std::string_view name,
                 const std::vector<FieldError>& errors) {
  std::string qualified_kind =
      group.empty() ? std::string(kind) : fmt::format("{}.{}", kind, group);
  // utilerrors.NewAggregate: one message alone, several as "[a, b]", duplicates once.
  std::vector<std::string> messages;
  std::set<std::string> seen;
  for (const FieldError& e : errors) {
    std::string m = e.ToString();
    if (seen.insert(m).second) messages.push_back(std::move(m));
  }
  std::string message = fmt::format("{} \"{}\" is invalid", qualified_kind, name);
  if (messages.size() == 1) {
    message += ": " + messages[0];
  } else if (messages.size() > 1) {
    message += ": [";
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i > 0) message += ", ";
      message += messages[i];
    }
    message += "]";
  }
  ApiError e = WithDetails(Make(422, "Invalid", std::move(message)), group, kind, name);
  for (const FieldError& fe : errors) {
    e.causes.push_back({fe.CauseType(), fe.Body(), fe.field});
  }
  return e;
}

ApiError Forbidden(std::string_view group, std::string_view resource, std::string_view name,
                   std::string_view why) {
  // A collection request names no object: `nodes is forbidden: ...`, as kube-apiserver says.
  std::string what = name.empty()
                         ? QualifiedResource(group, resource)
                         : fmt::format("{} \"{}\"", QualifiedResource(group, resource), name);
  return WithDetails(Make(403, "Forbidden", fmt::format("{} is forbidden: {}", what, why)), group,
                     resource, name);
}

ApiError BadRequest(std::string message) { return Make(400, "BadRequest", std::move(message)); }

ApiError MethodNotAllowed() {
  ApiError e = Make(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource");
  e.has_details = true;
  return e;
}

ApiError UnsupportedMediaType(std::string message) {
  return Make(415, "UnsupportedMediaType", std::move(message));
}

ApiError Expired(std::string message) { return Make(410, "Expired", std::move(message)); }

ApiError Gone(std::string message) { return Make(410, "Gone", std::move(message)); }

ApiError Internal(std::string message) {
  ApiError e = Make(500, "InternalError", fmt::format("Internal error occurred: {}", message));
  e.has_details = true;
  e.causes.push_back({"", std::move(message), ""});
  return e;
}

ApiError TooManyRequests(std::string message, int retry_after_seconds) {
  ApiError e = Make(429, "TooManyRequests", std::move(message));
  e.has_details = true;
  e.retry_after_seconds = retry_after_seconds;
  return e;
}

ApiError ServiceUnavailable(std::string message) {
  return Make(503, "ServiceUnavailable", std::move(message));
}

ApiError Timeout(std::string message, int retry_after_seconds) {
  ApiError e = Make(504, "Timeout", fmt::format("Timeout: {}", message));
  e.has_details = true;
  e.retry_after_seconds = retry_after_seconds;
  return e;
}

ApiError UnprocessablePatch(std::string message) {
  ApiError e =
      Make(422, "Invalid", "the server rejected our request due to an error in our request");
  e.has_details = true;
  e.causes.push_back({"UnexpectedServerResponse", std::move(message), ""});
  return e;
}

ApiError UnknownResource() {
  ApiError e = Make(404, "NotFound", "the server could not find the requested resource");
  e.has_details = true;
  return e;
}

ApiError FromCode(int code, std::string message, int retry_after_seconds) {
  std::string reason;
  switch (code) {
    case 400:
      reason = "BadRequest";
      break;
    case 401:
      reason = "Unauthorized";
      break;
    case 403:
      reason = "Forbidden";
      break;
    case 404:
      reason = "NotFound";
      break;
    case 405:
      reason = "MethodNotAllowed";
      break;
    case 409:
      reason = "Conflict";
      break;
    case 410:
      reason = "Gone";
      break;
    case 415:
      reason = "UnsupportedMediaType";
      break;
    case 422:
      reason = "Invalid";
      break;
    case 429:
      reason = "TooManyRequests";
      break;
    case 500:
      reason = "InternalError";
      break;
    case 503:
      reason = "ServiceUnavailable";
      break;
    case 504:
      reason = "Timeout";
      break;
    default:
      break;
  }
  ApiError e = Make(code, std::move(reason), std::move(message));
  if (retry_after_seconds > 0) {
    e.has_details = true;
    e.retry_after_seconds = retry_after_seconds;
  }
  return e;
}

}  // namespace errors

}  // namespace tools::apiserver
