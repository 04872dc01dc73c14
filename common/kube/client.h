// Client: the Kubernetes REST verbs MeshStor uses, on JSON bodies, over a Transport.
// Typed access for our CRDs and core types is layered on top (typed_client.h).
//
// Errors: HTTP statuses map to Status codes (common/status HttpToStatus) and keep the server's
// message and reason: 404 NotFound; 409 AlreadyExists on create, Aborted on a resourceVersion
// conflict; 422/400 InvalidArgument; 403 PermissionDenied; 401 Unauthenticated; 410 OutOfRange
// (resourceVersion too old); 429, 5xx and timeouts Unavailable/DeadlineExceeded (retryable).
//
// Thread contract: safe for concurrent use; the Transport must outlive the Client.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/kube/resource.h"
#include "common/kube/transport.h"
#include "common/status/status.h"

namespace common::kube {

struct ListOptions {
  std::string label_selector;  // e.g. "app=meshstor,tier!=x"
  std::string field_selector;  // e.g. "metadata.name=node-a"
  int64_t limit = 0;           // 0: no paging
  std::string continue_token;
  std::string resource_version;  // "" = most recent (quorum read)
};

struct ListResult {
  std::vector<std::string> items;  // each item's JSON, with apiVersion and kind filled in
  std::string resource_version;    // of the list, to start a watch from
  std::string continue_token;      // empty on the last page
};

struct WatchOptions {
  std::string resource_version;  // start after this version; "" = from now (sends initial ADDED)
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  int64_t timeout_seconds = 300;  // server-side end of the watch; the caller re-watches
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  std::string object;            // the object's JSON (for kError: a metav1.Status)
  std::string resource_version;  // metadata.resourceVersion of object
};

struct DeleteOptions {
  std::string precondition_uid;
  std::string precondition_resource_version;
  std::string propagation_policy;  // "", "Foreground", "Background", "Orphan"
};

class Client {
 public:
  // `transport` must outlive the client. `request_timeout` bounds every unary request.
  explicit Client(Transport& transport,
                  std::chrono::milliseconds request_timeout = std::chrono::seconds(30));

  Result<std::string> Get(const ResourceType& type, const ObjectKey& key);
  // One page (or everything when options.limit == 0 and the server does not page).
  Result<ListResult> List(const ResourceType& type, std::string_view ns,
                          const ListOptions& options = {});
  // All pages, following continue tokens; the resourceVersion is the first page's.
  Result<ListResult> ListAll(const ResourceType& type, std::string_view ns,
                             ListOptions options = {});
  // Returns the stored object. metadata.name or generateName must be set in `body`.
  Result<std::string> Create(const ResourceType& type, std::string_view ns, std::string body);
  // PUT of the whole object; metadata.resourceVersion in the body makes it conditional.
  Result<std::string> Update(const ResourceType& type, const ObjectKey& key, std::string body);
  // PUT to the status subresource.
  Result<std::string> UpdateStatus(const ResourceType& type, const ObjectKey& key,
                                   std::string body);
  // JSON merge patch (RFC 7386); subresource "status" patches status.
  Result<std::string> MergePatch(const ResourceType& type, const ObjectKey& key, std::string patch,
                                 std::string_view subresource = {});
  // OK when deleted or deletion started (finalizers pending). NotFound when absent.
  Status Delete(const ResourceType& type, const ObjectKey& key, const DeleteOptions& options = {});

  // Streams watch events to `on_event` until the server ends the watch (OK), `on_event` returns
  // false or a stop is requested on `stop` (Cancelled), or the stream fails (error Status). A 410
  // Gone, either as HTTP status or as an ERROR event, returns OutOfRange so the caller relists.
  // ERROR events end the watch with their Status and are never passed to `on_event`. `stop` is
  // honoured within about 100 ms even while the server sends nothing.
  Status Watch(const ResourceType& type, std::string_view ns, const WatchOptions& options,
               const std::function<bool(const WatchEvent&)>& on_event, std::stop_token stop = {});

 private:
  Result<std::string> Unary(HttpRequest request, bool is_create);

  Transport& transport_;
  std::chrono::milliseconds request_timeout_;
};

// Parses a metav1.Status body into a Status with the server's message and reason; falls back to
// the HTTP code's mapping and the raw body when the body is not a metav1.Status.
Status StatusFromResponse(int http_status, std::string_view body, bool is_create);

}  // namespace common::kube
