#include "agent/inventory.h"

#include <algorithm>
#include <map>

#include "common/api/v1alpha1/codec.h"
#include "common/kube/resource.h"

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;

}  // namespace

PartitionCounts ClassifyPartitions(std::string_view node, const DriveSnapshot& drive,
                                   const std::vector<v1::MeshStorVolume>& volumes) {
  PartitionCounts c;
  for (const auto& p : drive.partitions) {
    if (!p.member) continue;
    const v1::Member* claim = nullptr;
    for (const auto& v : volumes) {
      if (v.metadata.name != p.member->volume) continue;
      for (const auto& m : v.spec.members) {
        if (m.index == static_cast<int32_t>(p.member->index) && m.node == node &&
            m.drive == drive.drive.name && m.state == v1::MemberState::kPresent) {
          claim = &m;
        }
      }
    }
    if (claim == nullptr) {
      ++c.unknown;
    } else if (claim->role == v1::MemberRole::kLocal) {
      ++c.local;
    } else {
      ++c.remote;
    }
  }
  return c;
}

std::vector<v1::MeshStorNodeDevice> BuildNodeDevices(
    std::string_view node, const std::vector<DriveSnapshot>& drives,
    const std::vector<v1::MeshStorVolume>& volumes, std::string_view host_nqn,
    const std::vector<v1::TransportAddress>& addresses, common::api::Time now) {
  std::vector<v1::MeshStorNodeDevice> out;
  for (const auto& d : drives) {
    if (d.drive.remote()) continue;  // an imported namespace, not a drive of this node
    v1::MeshStorNodeDevice nd;
    nd.metadata.name = v1::NodeDeviceName(node, d.drive.name);
    nd.metadata.labels["csi.meshstor.io/node"] = std::string(node);
    nd.spec.node_name = std::string(node);
    nd.spec.device = d.drive.name;
    auto& s = nd.status;
    s.device_path = d.drive.device_path;
    s.model = d.drive.model;
    s.serial = d.drive.serial;
    s.size_bytes = static_cast<int64_t>(d.drive.size_bytes);
    s.sector_size = static_cast<int32_t>(d.drive.logical_block_size);
    s.queue_count = static_cast<int32_t>(d.drive.hw_queues);
    s.biggest_free_extent_bytes = static_cast<int64_t>(d.biggest_free_bytes);
    PartitionCounts c = ClassifyPartitions(node, d, volumes);
    s.local_partitions = c.local;
    s.remote_partitions = c.remote;
    s.unknown_partitions = c.unknown;
    s.host_nqn = std::string(host_nqn);
    s.transport_addresses = addresses;
    s.updated_at = now;
    out.push_back(std::move(nd));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.metadata.name < b.metadata.name; });
  return out;
}

common::Result<std::vector<DriveSnapshot>> SnapshotDrives(const NodeKernel& kernel,
                                                          std::vector<common::Status>* errors) {
  ASSIGN_OR_RETURN(auto drives, kernel.drives->List());
  std::vector<DriveSnapshot> out;
  for (auto& d : drives) {
    if (d.remote()) continue;
    DriveSnapshot snap;
    auto table = kernel.partitions->ReadTable(d.device_path);
    if (!table.ok()) {
      // A drive we cannot read (e.g. a foreign partition table) still gets an object, with
      // no free space, so it is visible and never placed on.
      if (errors != nullptr) {
        errors->push_back(table.status().WithContext("reading drive " + d.device_path));
      }
    } else {
      snap.partitions = std::move(table->partitions);
      snap.biggest_free_bytes = table->free.biggest_bytes;
    }
    snap.drive = std::move(d);
    out.push_back(std::move(snap));
  }
  return out;
}

Inventory::Inventory(common::kube::Client& client, std::string node, std::chrono::seconds refresh)
    : client_(client), node_(std::move(node)), refresh_(refresh) {}

common::Status Inventory::Sync(const std::vector<v1::MeshStorNodeDevice>& desired,
                               const std::vector<v1::MeshStorNodeDevice>& current) {
  const auto& type = common::kube::MeshStorNodeDevices();
  std::map<std::string, const v1::MeshStorNodeDevice*> have;
  for (const auto& c : current) {
    if (c.spec.node_name == node_) have[c.metadata.name] = &c;
  }
  common::Status first_error;
  auto note = [&](common::Status s) {
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  };
  for (const auto& want : desired) {
    auto it = have.find(want.metadata.name);
    if (it == have.end()) {
      auto created = client_.Create(type, "", v1::EncodeMeshStorNodeDevice(want));
      if (!created.ok() && created.status().code() != common::StatusCode::kAlreadyExists) {
        note(created.status().WithContext("creating " + want.metadata.name));
        continue;
      }
      if (!created.ok()) continue;  // someone else's copy: the next pass updates it
      // The status subresource ignores status on create: write it now.
      auto obj = v1::DecodeMeshStorNodeDevice(*created);
      if (!obj.ok()) {
        note(obj.status());
        continue;
      }
      obj->status = want.status;
      note(client_.UpdateStatus(type, {"", want.metadata.name}, v1::EncodeMeshStorNodeDevice(*obj))
               .status()
               .WithContext("reporting " + want.metadata.name));
      continue;
    }
    const v1::MeshStorNodeDevice& cur = *it->second;
    have.erase(it);
    v1::MeshStorNodeDeviceStatus a = cur.status, b = want.status;
    a.updated_at.reset();
    b.updated_at.reset();
    bool stale = !cur.status.updated_at || !want.status.updated_at ||
                 *want.status.updated_at - *cur.status.updated_at >= refresh_;
    if (a == b && !stale) continue;
    v1::MeshStorNodeDevice next = cur;
    next.status = want.status;
    auto updated =
        client_.UpdateStatus(type, {"", cur.metadata.name}, v1::EncodeMeshStorNodeDevice(next));
    // A conflict means the cache is behind: the next pass has the newer copy.
    if (!updated.ok() && updated.status().code() != common::StatusCode::kAborted) {
      note(updated.status().WithContext("reporting " + cur.metadata.name));
    }
  }
  for (const auto& [name, obj] : have) {
    common::kube::DeleteOptions opts;
    opts.precondition_uid = obj->metadata.uid;
    auto s = client_.Delete(type, {"", name}, opts);
    if (!s.ok() && s.code() != common::StatusCode::kNotFound) {
      note(s.WithContext("deleting " + name + " (drive gone)"));
    }
  }
  return first_error;
}

}  // namespace agent
