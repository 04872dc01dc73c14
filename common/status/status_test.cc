#include "common/status/status.h"

#include <cerrno>
#include <string>

#include <catch2/catch.hpp>

namespace common {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("value {} is not positive", v);
  return v;
}

Result<int> Doubled(int v) {
  ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status CheckBoth(int a, int b) {
  RETURN_IF_ERROR(ParsePositive(a).status());
  RETURN_IF_ERROR(ParsePositive(b).status().WithContext("second"));
  return OkStatus();
}

TEST_CASE("OK status has no message and prints OK", "[unit][status]") {
  Status s;
  CHECK(s.ok());
  CHECK(s.code() == StatusCode::kOk);
  CHECK(s.message().empty());
  CHECK(s.ToString() == "OK");
  // An OK code never carries a message.
  CHECK(Status(StatusCode::kOk, "ignored").message().empty());
}

TEST_CASE("Status keeps code, message and detail through copies", "[unit][status]") {
  Status s(StatusCode::kNotFound, "msvol pvc-1 not found", "NotFound");
  Status copy = s;
  CHECK(copy == s);
  CHECK(copy.code() == StatusCode::kNotFound);
  CHECK(copy.ToString() == "NOT_FOUND: msvol pvc-1 not found [NotFound]");
  Status moved = std::move(copy);
  CHECK(moved.message() == "msvol pvc-1 not found");
  CHECK(s.WithContext("reconciling").message() == "reconciling: msvol pvc-1 not found");
  CHECK(OkStatus().WithContext("x").ok());
}

TEST_CASE("Status codes are the gRPC canonical values", "[unit][status]") {
  CHECK(static_cast<int>(StatusCode::kInvalidArgument) == 3);
  CHECK(static_cast<int>(StatusCode::kFailedPrecondition) == 9);
  CHECK(static_cast<int>(StatusCode::kUnauthenticated) == 16);
  CHECK(StatusCodeName(StatusCode::kFailedPrecondition) == "FAILED_PRECONDITION");
  CHECK(StatusCodeFromInt(14) == StatusCode::kUnavailable);
  CHECK(StatusCodeFromInt(99) == StatusCode::kUnknown);
  CHECK(StatusCodeFromInt(-1) == StatusCode::kUnknown);
}

TEST_CASE("Retryable codes", "[unit][status]") {
  CHECK(UnavailableError("x").IsRetryable());
  CHECK(AbortedError("x").IsRetryable());
  CHECK_FALSE(InvalidArgumentError("x").IsRetryable());
  CHECK_FALSE(NotFoundError("x").IsRetryable());
  CHECK_FALSE(OkStatus().IsRetryable());
}

TEST_CASE("Result holds a value or an error and the macros propagate", "[unit][status]") {
  Result<int> good = Doubled(21);
  REQUIRE(good.ok());
  CHECK(*good == 42);
  Result<int> bad = Doubled(-3);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() == "value -3 is not positive");
  CHECK(bad.value_or(7) == 7);

  CHECK(CheckBoth(1, 2).ok());
  CHECK(CheckBoth(1, 0).message() == "second: value 0 is not positive");
  CHECK(CheckBoth(-1, 0).message() == "value -1 is not positive");
}

TEST_CASE("Result from an OK status is an internal error, not a silent value", "[unit][status]") {
  Result<std::string> r{OkStatus()};
  CHECK_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInternal);
}

TEST_CASE("errno maps to codes and keeps the number", "[unit][status]") {
  struct Case {
    int err;
    StatusCode code;
  };
  auto c = GENERATE(Case{ENOENT, StatusCode::kNotFound}, Case{EEXIST, StatusCode::kAlreadyExists},
                    Case{EPERM, StatusCode::kPermissionDenied},
                    Case{EACCES, StatusCode::kPermissionDenied},
                    Case{EINVAL, StatusCode::kInvalidArgument}, Case{EIO, StatusCode::kInternal},
                    Case{ETIMEDOUT, StatusCode::kUnavailable});
  Status s = ErrnoToStatus(c.err, "opening /dev/nvme0n1");
  CHECK(s.code() == c.code);
  CHECK(s.detail() == std::to_string(c.err));
  CHECK(s.message().rfind("opening /dev/nvme0n1: ", 0) == 0);
  CHECK(ErrnoToStatus(0, "x").ok());
  CHECK(ErrnoToStatus(ENOENT, "x").message().find("ENOENT") != std::string::npos);
}

TEST_CASE("HTTP codes of the Kubernetes API map to Status codes", "[unit][status]") {
  CHECK(HttpToStatus(200, false, "").ok());
  CHECK(HttpToStatus(201, true, "").ok());
  CHECK(HttpToStatus(404, false, "not found").code() == StatusCode::kNotFound);
  CHECK(HttpToStatus(409, true, "exists", "AlreadyExists").code() == StatusCode::kAlreadyExists);
  CHECK(HttpToStatus(409, false, "stale", "Conflict").code() == StatusCode::kAborted);
  CHECK(HttpToStatus(409, true, "stale", "Conflict").code() == StatusCode::kAborted);
  CHECK(HttpToStatus(422, false, "bad").code() == StatusCode::kInvalidArgument);
  CHECK(HttpToStatus(403, false, "no").code() == StatusCode::kPermissionDenied);
  CHECK(HttpToStatus(429, false, "slow down").code() == StatusCode::kUnavailable);
  CHECK(HttpToStatus(503, false, "").code() == StatusCode::kUnavailable);
  CHECK(HttpToStatus(503, false, "").message() == "HTTP 503");
  CHECK(HttpToStatus(410, false, "too old").code() == StatusCode::kOutOfRange);
  // The server's message is kept.
  CHECK(HttpToStatus(422, false, "spec.sectorSize: Unsupported value: 1024").message() ==
        "spec.sectorSize: Unsupported value: 1024");
}

}  // namespace
}  // namespace common
