#include "agent/host_cache.h"

#include <fmt/format.h>

#include "agent/sys/nvmet.h"

namespace agent {

void PassCachedNvmeHost::BeginPass(bool retry_unanswered) {
  if (!retry_unanswered) return;
  std::lock_guard lock(mu_);
  unanswered_.clear();
}

common::Result<sys::NvmeController> PassCachedNvmeHost::Connect(const sys::NvmeConnectSpec& spec) {
  const Address address{spec.transport, spec.address, spec.service};
  {
    std::lock_guard lock(mu_);
    if (auto it = unanswered_.find(address); it != unanswered_.end()) {
      return common::Status(
          it->second.code(),
          fmt::format("connecting to NVMe-oF subsystem {} at {} {}:{}: not tried, the address did "
                      "not answer earlier ({})",
                      spec.subsys_nqn, sys::NvmeTransportName(spec.transport), spec.address,
                      spec.service, it->second.message()),
          it->second.detail());
    }
  }
  auto controller = inner_.Connect(spec);
  if (!controller.ok() && sys::IsTargetUnreachable(controller.status())) {
    std::lock_guard lock(mu_);
    unanswered_.insert_or_assign(address, controller.status());
  }
  return controller;
}

}  // namespace agent
