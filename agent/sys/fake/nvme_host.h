// FakeNvmeHost: node N's NvmeHost view of a FakeFabric (see fake/nvmet.h). Controllers are
// "live" while their subsystem is reachable (target online, port present, subsystem linked,
// host NQN allowed) and "connecting" otherwise, like a kernel controller in its reconnect loop;
// namespace devices (/dev/nvme<instance>n<nsid>) exist only while the controller is live.
//
// Thread contract: safe for concurrent use.
#pragma once

#include <string>

#include "agent/sys/fake/nvmet.h"
#include "agent/sys/nvme_host.h"

namespace agent::sys {

class FakeNvmeHost final : public NvmeHost {
 public:
  // `fabric` must outlive this object.
  FakeNvmeHost(FakeFabric& fabric, std::string node, NvmeHostIdentity identity);

  // Failure injection: method names are the NvmeHost methods.
  void FailCall(std::string method, int nth, common::Status status);

  common::Result<NvmeController> Connect(const NvmeConnectSpec& spec) override;
  common::Status Disconnect(std::string_view controller_name) override;
  common::Result<std::vector<NvmeController>> ListControllers() override;
  common::Result<std::string> FindNamespaceDevice(std::string_view subsys_nqn,
                                                  const NvmeNamespaceSelector& selector) override;
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override;
  common::Result<NvmeHostIdentity> GetHostIdentity() override;

 private:
  FakeFabric& fabric_;
  std::string node_;
  NvmeHostIdentity identity_;
};

}  // namespace agent::sys
