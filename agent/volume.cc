#include "agent/volume.h"

#include <algorithm>

#include <fmt/format.h>

namespace agent {
namespace {

namespace v1 = common::api::v1alpha1;

}  // namespace

std::string StagingPath(const AgentSettings& settings, std::string_view volume) {
  return fmt::format("{}/{}", settings.staging_root, volume);
}

std::string ConsumerStagingPath(const AgentSettings& settings, const v1::MeshStorVolume& v) {
  if (!v.spec.staging_path.empty()) return v.spec.staging_path;
  return StagingPath(settings, v.metadata.name);
}

common::Status CheckMountPath(const AgentSettings& settings, std::string_view path,
                              std::string_view what) {
  if (path.empty() || path.front() != '/') {
    return common::InvalidArgumentError("{} \"{}\" is not an absolute path", what, path);
  }
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return common::InvalidArgumentError("{} \"{}\" is not a normalized path", what, path);
    }
    start = end + 1;
  }
  for (const std::string& root : {settings.kubelet_root, settings.staging_root}) {
    if (!root.empty() && path.size() > root.size() + 1 && path.starts_with(root) &&
        path[root.size()] == '/') {
      return common::OkStatus();
    }
  }
  return common::InvalidArgumentError("{} \"{}\" is outside {} and {}; refusing to mount there",
                                      what, path, settings.kubelet_root, settings.staging_root);
}

bool ApplyOutcome(const VolumeOutcome& outcome, std::string_view node,
                  v1::MeshStorVolumeStatus& status) {
  const v1::MeshStorVolumeStatus before = status;
  for (const OwnerReport& r : outcome.owner) {
    auto it =
        std::find_if(status.partitions.begin(), status.partitions.end(),
                     [&](const v1::PartitionStatus& p) { return p.index == r.partition.index; });
    if (r.remove) {
      if (it != status.partitions.end()) status.partitions.erase(it);
      continue;
    }
    if (it == status.partitions.end()) {
      v1::PartitionStatus p = r.partition;
      p.state = v1::PartitionState::kCreated;
      status.partitions.push_back(std::move(p));
      continue;
    }
    it->node_id = r.partition.node_id;
    it->drive = r.partition.drive;
    it->partition_uuid = r.partition.partition_uuid;
    it->nvmeof_namespace_id = r.partition.nvmeof_namespace_id;
    it->size_bytes = r.partition.size_bytes;
    it->fenced_nodes = r.partition.fenced_nodes;
    if (r.zeroed_now || it->state == v1::PartitionState::kRequested) {
      it->state = v1::PartitionState::kCreated;
      it->missing_since.reset();
      it->updated_at = r.partition.updated_at;
    }
  }
  std::sort(status.partitions.begin(), status.partitions.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  if (outcome.consumer) {
    const ConsumerReport& c = *outcome.consumer;
    if (c.torn_down) {
      if (status.node_name == node || status.node_name.empty()) {
        status.node_name.clear();
        status.md_state.clear();
        status.total_devices.reset();
        status.active_devices.reset();
        status.failed_devices.reset();
        status.down_devices.reset();
        status.sync_percentage.clear();
        status.staged_path.clear();
        status.filesystem_bytes.reset();
        status.published_targets.clear();
      }
    } else if (c.assembled) {
      status.node_name = std::string(node);
      status.md_state = c.md_state;
      status.total_devices = c.total_devices;
      status.active_devices = c.active_devices;
      status.failed_devices = c.failed_devices;
      status.down_devices = c.down_devices;
      status.sync_percentage = c.sync_percentage;
      status.staged_path = c.staged_path;
      status.filesystem_bytes = c.filesystem_bytes;
      status.published_targets = c.published_targets;
    }
    if (c.start_blocked) status.start_blocked = *c.start_blocked;
    if (c.forced_start) status.forced_start = *c.forced_start;
    if (c.in_sync && !c.in_sync->empty()) {
      if (!status.in_sync || status.in_sync->members != *c.in_sync) {
        // The members this record leaves out: their own copies cannot carry a higher count than
        // the array's now (MD bumped the survivors' count when it failed them) unless an array
        // is run from them elsewhere later (docs/design.md §6.1, "Rejoining").
        if (status.in_sync && c.in_sync_events) {
          for (int32_t index : status.in_sync->members) {
            if (std::find(c.in_sync->begin(), c.in_sync->end(), index) != c.in_sync->end()) {
              continue;
            }
            for (auto& p : status.partitions) {
              if (p.index == index && !p.left_at_events) p.left_at_events = c.in_sync_events;
            }
          }
        }
        v1::InSyncRecord rec;
        rec.members = *c.in_sync;
        rec.node = std::string(node);
        rec.recorded_at = outcome.observed_at;
        rec.events = c.in_sync_events;
        status.in_sync = std::move(rec);
      }
      // A diverged member in sync again was rebuilt in full: it is of this lineage now.
      if (status.forced_start) {
        auto& diverged = status.forced_start->diverged_members;
        std::erase_if(diverged, [&](int32_t i) {
          return std::find(c.in_sync->begin(), c.in_sync->end(), i) != c.in_sync->end();
        });
      }
    }
    if (!c.torn_down) {
      for (auto& p : status.partitions) {
        auto obs = c.members.find(p.index);
        if (obs == c.members.end()) continue;
        const MemberObservation& o = obs->second;
        if (p.state != o.state) {
          p.state = o.state;
          p.updated_at = outcome.observed_at;
        }
        if (o.state == v1::PartitionState::kMissing) {
          if (!p.missing_since) p.missing_since = o.missing_since;
        } else {
          p.missing_since.reset();
        }
        // A working member of the running array again: MD keeps its superblock in step.
        if (o.state == v1::PartitionState::kSynced || o.state == v1::PartitionState::kSyncing ||
            o.state == v1::PartitionState::kSpare) {
          p.left_at_events.reset();
        }
        p.message = o.message;
      }
      for (auto& p : status.partitions) {
        auto events = c.member_events.find(p.index);
        if (events != c.member_events.end()) p.md_events = events->second;
      }
    }
  }
  return !(status == before);
}

VolumeReconciler::VolumeReconciler(NodeKernel kernel, AgentSettings settings,
                                   const common::time::Clock& clock)
    : k_(kernel), settings_(std::move(settings)), clock_(clock) {}

VolumeOutcome VolumeReconciler::Reconcile(const v1::MeshStorVolume& v, const Peers& peers) {
  VolumeOutcome out;
  out.observed_at = std::chrono::floor<std::chrono::seconds>(clock_.Now());
  // Not the consumer (any more, or fenced): the array is torn down before a member of it may be
  // exported to the next consumer. The consumer needs its members created first.
  const bool consumes = ConsumesHere(v);
  if (!consumes) ReconcileConsumer(v, peers, out);
  for (const v1::Member& m : v.spec.members) {
    if (m.node == settings_.node) ReconcileOwnedMember(v, m, peers, out);
  }
  if (consumes) ReconcileConsumer(v, peers, out);
  return out;
}

}  // namespace agent
