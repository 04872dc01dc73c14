// Transport: one HTTP(S) connection policy to a Kubernetes API server (base URL, TLS, auth).
// The Client builds requests; a Transport only sends them. HttpTransport (http_transport.h) is
// the real one, on cpp-httplib + OpenSSL; tests may substitute their own.
//
// Thread contract: implementations are safe for concurrent use by many threads.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status/status.h"

namespace common::kube {

struct HttpRequest {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // absolute path, e.g. /apis/csi.meshstor.io/v1alpha1/meshstorvolumes
  std::vector<std::pair<std::string, std::string>> query;  // unescaped; the transport escapes
  std::string body;
  std::string content_type;  // for bodies: application/json, application/merge-patch+json, ...
  // Whole-request bound for unary requests; for streams, the bound on connecting (and on the
  // silence between two chunks when stream_idle_timeout is zero).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Streams only: the bound on waiting for the response headers and on the silence between two
  // chunks. Zero: `timeout`. A watch sets it above its server-side timeoutSeconds, so that a
  // quiet but healthy watch is not cut while a dead connection still ends.
  std::chrono::milliseconds stream_idle_timeout{0};
  // Streams only, optional: once a stop is requested on it, Stream() returns Cancelled promptly
  // (within about 100 ms), even while no data arrives. Until then nothing polls it.
  std::stop_token cancel;
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one request and reads the whole response. Any HTTP status is returned as a response;
  // a Status error means no response: Unavailable (connection refused/reset, TLS failure) or
  // DeadlineExceeded (timeout), with the server address in the message.
  virtual Result<HttpResponse> Do(const HttpRequest& request) = 0;

  // Sends a GET whose response body is consumed as it arrives (watches). `on_data` gets each
  // chunk of a 2xx body and returns false to stop reading. Returns the HTTP status (also when
  // on_data stopped the stream); for non-2xx, the body is collected into `*error_body` instead
  // of being passed to on_data. A Status error means the connection failed or broke before the
  // server ended the response: Unavailable, DeadlineExceeded (no data within the idle
  // timeout), or Cancelled (a stop was requested on request.cancel).
  virtual Result<int> Stream(const HttpRequest& request,
                             const std::function<bool(std::string_view)>& on_data,
                             std::string* error_body) = 0;
};

}  // namespace common::kube
