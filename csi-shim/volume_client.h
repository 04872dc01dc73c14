// VolumeClient: the only way the shim touches the Kubernetes API. Typed access to the
// MeshStorVolume named by a CSI volume ID and to the drive inventory (MeshStorNodeDevice), spec
// edits guarded by resourceVersion, and the bounded wait for an answer in a volume's status.
//
// Thread contract: safe for concurrent use. The client and clock must outlive this object.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/api/v1alpha1/types.h"
#include "common/kube/client.h"
#include "common/status/status.h"
#include "common/time/clock.h"

namespace csi_shim {

class VolumeClient {
 public:
  struct Options {
    // How often WaitFor re-reads the volume.
    std::chrono::milliseconds poll_interval{250};
    // Conflicting writes (409) retried, each after re-reading, before Modify gives up (Aborted).
    int max_conflict_retries = 10;
  };

  // `client` and `clock` must outlive this object.
  VolumeClient(common::kube::Client& client, common::time::Clock& clock, Options options);

  // NotFound when no volume has that name; API errors otherwise.
  common::Result<common::api::v1alpha1::MeshStorVolume> Get(const std::string& name);

  // Creates the volume; AlreadyExists when one with that name exists.
  common::Result<common::api::v1alpha1::MeshStorVolume> Create(
      const common::api::v1alpha1::MeshStorVolume& volume);

  // Starts deletion; OK when it was accepted or the volume is already gone.
  common::Status Delete(const std::string& name);

  // All drives of all nodes.
  common::Result<std::vector<common::api::v1alpha1::MeshStorNodeDevice>> ListDevices();

  // Whether the API server answers a list of volumes.
  common::Status Ping();

  // Reads the volume, lets `mutate` change it and writes the spec back guarded by the
  // resourceVersion it read, retrying from the read on a conflict. `mutate` returns false when
  // nothing needs to change (no write then) or an error Status, which is returned as is.
  // Returns the volume as stored after the write (or as read when nothing changed).
  using Mutation = std::function<common::Result<bool>(common::api::v1alpha1::MeshStorVolume&)>;
  common::Result<common::api::v1alpha1::MeshStorVolume> Modify(const std::string& name,
                                                               const Mutation& mutate);

  // Re-reads the volume every poll interval until `done` returns OK (returns the volume), returns
  // a non-retryable error (returned as is), the volume is gone (NotFound), `cancelled` returns
  // true (Cancelled) or `deadline` passes: then DeadlineExceeded with the last retryable Status
  // from `done`, which says what is still missing.
  using Check = std::function<common::Status(const common::api::v1alpha1::MeshStorVolume&)>;
  common::Result<common::api::v1alpha1::MeshStorVolume> WaitFor(
      const std::string& name, const Check& done, std::chrono::steady_clock::time_point deadline,
      const std::function<bool()>& cancelled);

  common::time::Clock& clock() { return clock_; }

 private:
  common::kube::Client& client_;
  common::time::Clock& clock_;
  const Options options_;
};

}  // namespace csi_shim
