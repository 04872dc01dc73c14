#include "csi-shim/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

namespace csi_shim {

using common::InvalidArgumentError;
using common::Result;
using common::Status;

Result<std::string> SocketPathOf(const std::string& endpoint) {
  std::string path;
  if (endpoint.starts_with("unix://")) {
    path = endpoint.substr(7);
  } else if (endpoint.starts_with("unix:")) {
    path = endpoint.substr(5);
  } else {
    return InvalidArgumentError("endpoint \"{}\" is not a unix:// endpoint", endpoint);
  }
  if (path.empty() || path.front() != '/') {
    return InvalidArgumentError("endpoint \"{}\" does not name an absolute socket path", endpoint);
  }
  return path;
}

namespace {

// Creates the socket's directory when missing (like a fresh emptyDir mount point would be);
// removes a socket file left behind by an earlier run; anything else at the path stays.
Status PrepareSocketPath(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) {
    return common::FailedPreconditionError("creating the directory of {}: {}", path, ec.message());
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return common::OkStatus();
    return common::ErrnoToStatus(errno, "lstat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return common::FailedPreconditionError("{} exists and is not a socket", path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return common::ErrnoToStatus(errno, "removing stale socket " + path);
  }
  return common::OkStatus();
}

}  // namespace

Result<std::unique_ptr<CsiServer>> CsiServer::Start(Options options, VolumeClient& volumes,
                                                    FsStats& fs_stats) {
  ASSIGN_OR_RETURN(std::string path, SocketPathOf(options.endpoint));
  if (!options.controller && !options.node) {
    return InvalidArgumentError("no CSI service to serve (controller or node)");
  }
  if (options.node && options.services.node_name.empty()) {
    return InvalidArgumentError("the node service needs the node name");
  }
  RETURN_IF_ERROR(PrepareSocketPath(path));

  std::unique_ptr<CsiServer> server(new CsiServer());
  server->socket_path_ = path;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  server->identity_ = std::make_unique<IdentityService>(volumes, options.services);
  builder.RegisterService(server->identity_.get());
  if (options.controller) {
    server->controller_ = std::make_unique<ControllerService>(volumes, server->locks_);
    builder.RegisterService(server->controller_.get());
  }
  if (options.node) {
    server->node_ =
        std::make_unique<NodeService>(volumes, server->locks_, fs_stats, options.services);
    builder.RegisterService(server->node_.get());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return common::UnavailableError("gRPC could not listen on {}", options.endpoint);
  }
  return server;
}

CsiServer::~CsiServer() { Stop(std::chrono::milliseconds(0)); }

void CsiServer::Stop(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
  // Best effort: the next start removes a leftover socket anyway.
  ::unlink(socket_path_.c_str());
}

}  // namespace csi_shim
