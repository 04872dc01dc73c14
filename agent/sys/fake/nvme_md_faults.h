// FakeFaults: failure injection shared by the fakes of nvmet, the NVMe host and MD.
// `FailCall("Connect", 2, status)` makes the second next call of Connect return `status`.
//
// Thread contract: not synchronized; each fake calls it under its own lock.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace agent::sys {

class FakeFaults {
 public:
  // The `nth` (1-based) next call of `method` fails with `status` (which must not be OK).
  void FailCall(std::string method, int nth, common::Status status) {
    pending_[std::move(method)].push_back({nth, std::move(status)});
  }

  // Counts a call of `method`; returns the injected failure when this call is the chosen one.
  common::Status Check(std::string_view method) {
    auto it = pending_.find(std::string(method));
    if (it == pending_.end()) return common::OkStatus();
    common::Status result;
    std::vector<Pending> rest;
    for (auto& p : it->second) {
      if (--p.remaining == 0 && result.ok()) {
        result = p.status;
      } else if (p.remaining > 0) {
        rest.push_back(std::move(p));
      }
    }
    it->second = std::move(rest);
    return result;
  }

 private:
  struct Pending {
    int remaining;
    common::Status status;
  };
  std::map<std::string, std::vector<Pending>> pending_;
};

}  // namespace agent::sys
