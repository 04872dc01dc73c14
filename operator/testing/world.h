// An in-memory world for the pure reconcile tests: volumes, inventory and simulated agents, with
// the API server's rules that matter here (resourceVersion guard, generation bumps on spec
// changes, deletion once the last finalizer is gone).
//
// Thread contract: single-threaded test helper.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "operator/reconcile.h"
#include "operator/testing/builders.h"
#include "operator/testing/fake_agents.h"

namespace meshstor_operator::testing {

class World {
 public:
  explicit World(Inventory base) : base_(std::move(base)) { agents.now = base_.now; }

  Inventory& base() { return base_; }
  void Put(v1::MeshStorVolume v) {
    v.metadata.resource_version = std::to_string(++rv_);
    if (v.metadata.generation == 0) v.metadata.generation = 1;
    volumes[v.metadata.name] = std::move(v);
  }
  v1::MeshStorVolume& Get(const std::string& name) { return volumes.at(name); }
  bool Exists(const std::string& name) const { return volumes.count(name) > 0; }

  Inventory Snapshot() const {
    Inventory inv = base_;
    inv.now = agents.now;
    // Agents that are up heartbeat their drives; a down node's inventory goes stale.
    for (auto& d : inv.devices) {
      if (agents.down_nodes.count(d->spec.node_name)) continue;
      auto fresh = *d;
      fresh.status.updated_at = std::chrono::time_point_cast<std::chrono::seconds>(agents.now);
      d = std::make_shared<const v1::MeshStorNodeDevice>(fresh);
    }
    for (const auto& [n, v] : volumes) {
      inv.volumes.push_back(std::make_shared<const v1::MeshStorVolume>(v));
    }
    return inv;
  }

  // One operator pass, applied. Records every decision in `history`.
  Decision Pass(const std::string& name) {
    if (!Exists(name)) return {};
    Decision d = Decide(volumes.at(name), Snapshot(), limits);
    history.push_back(d);
    Apply(name, d);
    return d;
  }

  void Apply(const std::string& name, const Decision& d) {
    if (d.write == Decision::Write::kNone) return;
    v1::MeshStorVolume& cur = volumes.at(name);
    REQUIRE(d.object.metadata.resource_version == cur.metadata.resource_version);
    if (d.write == Decision::Write::kSpec) {
      if (d.object.spec != cur.spec) ++cur.metadata.generation;
      cur.spec = d.object.spec;
      cur.metadata.finalizers = d.object.metadata.finalizers;
    } else {
      cur.status = d.object.status;
    }
    cur.metadata.resource_version = std::to_string(++rv_);
    if (cur.metadata.deletion_timestamp && cur.metadata.finalizers.empty()) volumes.erase(name);
  }

  // Operator passes until it has nothing to write (bounded).
  int OperatorSettle(const std::string& name) {
    int writes = 0;
    for (int i = 0; i < 50; ++i) {
      if (Pass(name).write == Decision::Write::kNone) return writes;
      ++writes;
    }
    FAIL("operator did not settle");
    return writes;
  }

  // Alternates operator passes and agent steps until neither changes anything (bounded).
  void Converge(const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      int writes = OperatorSettle(name);
      bool agent = Exists(name) && StepAgents(volumes.at(name), agents);
      if (agent) volumes.at(name).metadata.resource_version = std::to_string(++rv_);
      if (writes == 0 && !agent) return;
    }
    FAIL("world did not converge");
  }

  void Advance(std::chrono::seconds d) { agents.now += d; }

  std::map<std::string, v1::MeshStorVolume> volumes;
  AgentWorld agents;
  Limits limits;
  std::vector<Decision> history;

 private:
  Inventory base_;
  int64_t rv_ = 0;
};

}  // namespace meshstor_operator::testing
