// CsiServer: the gRPC server on the CSI unix socket, serving Identity and the Controller and/or
// Node service. Starting creates the socket's directory if needed and removes a stale socket
// file left by an earlier run.
//
// Thread contract: Start and Stop from one thread; the services run on gRPC's threads. The
// VolumeClient and FsStats must outlive the server.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status/status.h"
#include "csi-shim/controller_service.h"
#include "csi-shim/fs_stats.h"
#include "csi-shim/identity_service.h"
#include "csi-shim/node_service.h"
#include "csi-shim/volume_client.h"
#include "csi-shim/volume_locks.h"

namespace csi_shim {

class CsiServer {
 public:
  struct Options {
    std::string endpoint;  // "unix:///path/csi.sock" (or "unix:/path")
    bool controller = false;
    bool node = false;  // REQUIRES: services.node_name when set
    ServiceOptions services;
  };

  // Serves until Stop(). InvalidArgument for an endpoint that is not unix://, a node service
  // without a node name or no service at all; FailedPrecondition when the socket path exists and
  // is not a socket or its directory cannot be created; Unavailable when gRPC cannot listen there.
  static common::Result<std::unique_ptr<CsiServer>> Start(Options options, VolumeClient& volumes,
                                                          FsStats& fs_stats);

  CsiServer(const CsiServer&) = delete;
  CsiServer& operator=(const CsiServer&) = delete;
  ~CsiServer();

  // Stops accepting calls, gives running ones up to `grace` to finish, then cancels them.
  // Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // The socket's file system path.
  const std::string& socket_path() const { return socket_path_; }

 private:
  CsiServer() = default;

  std::string socket_path_;
  VolumeLocks locks_;
  std::unique_ptr<IdentityService> identity_;
  std::unique_ptr<ControllerService> controller_;
  std::unique_ptr<NodeService> node_;
  std::unique_ptr<grpc::Server> server_;
};

// The file system path of a "unix:///path" or "unix:/path" endpoint; InvalidArgument otherwise.
common::Result<std::string> SocketPathOf(const std::string& endpoint);

}  // namespace csi_shim
