// PassCachedNvmeHost: the agent's NVMe host layer, with the target addresses that did not answer
// a connect remembered for the rest of the pass.
//
// A consumer connects, every pass, to each member it cannot find a device for. When a node is
// down its address does not answer, and the kernel gives up on each connect only after its
// socket timeout (about 3 s on Linux 6.1). A pass made that wait once per volume with a member
// there: 30 volumes with a copy on a dead node kept the consumer's pass busy for 90 s, and every
// other volume (a new one to stage, a replacement to add) waited behind it; under the lab's
// agent-kill chaos a pass then rarely finished at all.
//
// After a connect failed because the address did not answer (sys::IsTargetUnreachable), a
// further connect to the same transport, address and service fails at once with that error, and
// nothing else is tried there, until a pass begins with BeginPass(true). The agent passes false
// for a pass woken by kernel events alone: every failed connect adds and removes a controller,
// whose uevents woke the next pass at once, so that while a node was down the consumer ran pass
// after pass blocked in the connect timeout. The timer's pass (every --resync), a change in the
// API or a direct call retry, so a node that returns is connected to within one resync. A target
// that answered and refused (subsystem not exported, host not allowed) is not remembered: another
// subsystem there may be fine. Every other call goes through.
//
// Thread contract: safe for concurrent use (one mutex; the inner layer is called outside it).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "agent/sys/nvme_host.h"

namespace agent {

class PassCachedNvmeHost final : public sys::NvmeHost {
 public:
  // `inner` must outlive this object.
  explicit PassCachedNvmeHost(sys::NvmeHost& inner) : inner_(inner) {}

  // Called when a pass begins: forgets the addresses that did not answer when
  // `retry_unanswered`, keeps them otherwise.
  void BeginPass(bool retry_unanswered = true);

  common::Result<sys::NvmeController> Connect(const sys::NvmeConnectSpec& spec) override;
  common::Status Disconnect(std::string_view controller_name) override {
    return inner_.Disconnect(controller_name);
  }
  common::Result<std::vector<sys::NvmeController>> ListControllers() override {
    return inner_.ListControllers();
  }
  common::Result<std::string> FindNamespaceDevice(
      std::string_view subsys_nqn, const sys::NvmeNamespaceSelector& selector) override {
    return inner_.FindNamespaceDevice(subsys_nqn, selector);
  }
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override {
    return inner_.SubsystemOfDevice(device);
  }
  common::Result<sys::NvmeHostIdentity> GetHostIdentity() override {
    return inner_.GetHostIdentity();
  }

 private:
  using Address = std::tuple<sys::NvmeTransport, std::string, std::string>;

  sys::NvmeHost& inner_;
  std::mutex mu_;
  // Address -> the connect error it answered with (not at all) this pass. Guarded by mu_.
  std::map<Address, common::Status> unanswered_;
};

}  // namespace agent
