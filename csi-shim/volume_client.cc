#include "csi-shim/volume_client.h"

#include <algorithm>
#include <utility>

#include "common/api/v1alpha1/codec.h"
#include "common/kube/resource.h"

namespace csi_shim {
namespace {

namespace v1 = common::api::v1alpha1;
namespace kube = common::kube;
using common::Result;
using common::Status;
using common::StatusCode;

kube::ObjectKey Key(const std::string& name) { return {.namespace_ = "", .name = name}; }

// An object the API server stored that our codec cannot read is our problem, not the caller's.
Result<v1::MeshStorVolume> Decode(const std::string& json) {
  auto volume = v1::DecodeMeshStorVolume(json);
  if (!volume.ok()) {
    return common::InternalError("stored MeshStorVolume is malformed: {}",
                                 volume.status().message());
  }
  return volume;
}

}  // namespace

VolumeClient::VolumeClient(kube::Client& client, common::time::Clock& clock, Options options)
    : client_(client), clock_(clock), options_(options) {}

Result<v1::MeshStorVolume> VolumeClient::Get(const std::string& name) {
  auto json = client_.Get(kube::MeshStorVolumes(), Key(name));
  if (!json.ok()) {
    if (json.status().code() == StatusCode::kNotFound) {
      return common::NotFoundError("volume {} does not exist", name);
    }
    return json.status().WithContext(fmt::format("reading MeshStorVolume {}", name));
  }
  return Decode(*json);
}

Result<v1::MeshStorVolume> VolumeClient::Create(const v1::MeshStorVolume& volume) {
  auto json = client_.Create(kube::MeshStorVolumes(), "", v1::EncodeMeshStorVolume(volume));
  if (!json.ok()) {
    return json.status().WithContext(
        fmt::format("creating MeshStorVolume {}", volume.metadata.name));
  }
  return Decode(*json);
}

Status VolumeClient::Delete(const std::string& name) {
  Status s = client_.Delete(kube::MeshStorVolumes(), Key(name));
  if (s.code() == StatusCode::kNotFound) return common::OkStatus();
  return s.WithContext(fmt::format("deleting MeshStorVolume {}", name));
}

Result<std::vector<v1::MeshStorNodeDevice>> VolumeClient::ListDevices() {
  auto list = client_.ListAll(kube::MeshStorNodeDevices(), "");
  if (!list.ok()) return list.status().WithContext("listing MeshStorNodeDevices");
  std::vector<v1::MeshStorNodeDevice> out;
  out.reserve(list->items.size());
  for (const auto& item : list->items) {
    auto device = v1::DecodeMeshStorNodeDevice(item);
    if (!device.ok()) {
      return common::InternalError("stored MeshStorNodeDevice is malformed: {}",
                                   device.status().message());
    }
    out.push_back(std::move(device).value());
  }
  return out;
}

Status VolumeClient::Ping() {
  return client_.List(kube::MeshStorVolumes(), "", {.limit = 1}).status();
}

Result<v1::MeshStorVolume> VolumeClient::Modify(const std::string& name, const Mutation& mutate) {
  Status last;
  for (int attempt = 0; attempt <= options_.max_conflict_retries; ++attempt) {
    ASSIGN_OR_RETURN(v1::MeshStorVolume volume, Get(name));
    ASSIGN_OR_RETURN(bool changed, mutate(volume));
    if (!changed) return volume;
    // The body carries the resourceVersion just read, so the write fails with 409 (Aborted) if
    // anyone wrote in between; status in the body is ignored by the API server.
    auto json =
        client_.Update(kube::MeshStorVolumes(), Key(name), v1::EncodeMeshStorVolume(volume));
    if (json.ok()) return Decode(*json);
    last = json.status();
    if (last.code() == StatusCode::kNotFound) {
      return common::NotFoundError("volume {} does not exist", name);
    }
    if (last.code() != StatusCode::kAborted) {
      return last.WithContext(fmt::format("updating MeshStorVolume {}", name));
    }
  }
  return last.WithContext(
      fmt::format("updating MeshStorVolume {}: still conflicting after {} tries", name,
                  options_.max_conflict_retries + 1));
}

Result<v1::MeshStorVolume> VolumeClient::WaitFor(const std::string& name, const Check& done,
                                                 std::chrono::steady_clock::time_point deadline,
                                                 const std::function<bool()>& cancelled) {
  Status waiting = common::UnavailableError("not checked yet");
  while (true) {
    auto volume = Get(name);
    if (volume.ok()) {
      Status s = done(*volume);
      if (s.ok()) return volume;
      if (!s.IsRetryable()) return s;
      waiting = std::move(s);
    } else if (volume.status().code() == StatusCode::kNotFound) {
      return volume.status();
    } else {
      waiting = volume.status();
    }
    if (cancelled && cancelled()) {
      return Status(StatusCode::kCancelled,
                    fmt::format("cancelled while waiting: {}", waiting.message()));
    }
    auto now = clock_.SteadyNow();
    if (now >= deadline) {
      return common::DeadlineExceededError("volume {} not ready in time, retry: {}", name,
                                           waiting.message());
    }
    clock_.SleepFor(
        std::min<std::chrono::steady_clock::duration>(options_.poll_interval, deadline - now));
  }
}

}  // namespace csi_shim
