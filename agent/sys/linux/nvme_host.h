// LinuxNvmeHost: NvmeHost on /dev/nvme-fabrics and sysfs.
//
// Connect writes the option string ("transport=tcp,traddr=…,nqn=…,hostnqn=…,…") to
// /dev/nvme-fabrics and reads the answer ("instance=N,cntlid=M") from the same descriptor, as
// nvme-cli does, so no program is run. fast_io_fail_tmo goes into the option string; if the
// kernel rejects the string with EINVAL, the connect is retried without it and the value is
// written to /sys/class/nvme/nvmeN/fast_io_fail_tmo instead (kernel-lab.md pitfall 6).
//
// All paths are injectable so unit tests can run the sysfs readers against a temporary tree.
//
// Thread contract: safe for concurrent use (no state besides the paths).
#pragma once

#include <string>

#include "agent/sys/nvme_host.h"

namespace agent::sys {

struct LinuxNvmeHostPaths {
  std::string fabrics_device = "/dev/nvme-fabrics";
  std::string sys_class_nvme = "/sys/class/nvme";
  std::string sys_block = "/sys/block";
  std::string etc_nvme = "/etc/nvme";
  std::string machine_id = "/etc/machine-id";
  std::string dev = "/dev";
};

// The /dev/nvme-fabrics option string for `spec`, with or without fast_io_fail_tmo.
// InvalidArgument for missing fields, negative timeouts or a ',' or '=' inside a value.
common::Result<std::string> BuildFabricsOptions(const NvmeConnectSpec& spec,
                                                bool with_fast_io_fail_tmo);
// The controller instance from the kernel's answer "instance=N,cntlid=M".
common::Result<int> ParseFabricsResponse(std::string_view response);
// Splits /sys/class/nvme/nvmeX/address ("traddr=…,trsvcid=…,src_addr=…") into its fields.
void ParseControllerAddress(std::string_view address, std::string* traddr, std::string* trsvcid);

class LinuxNvmeHost final : public NvmeHost {
 public:
  explicit LinuxNvmeHost(LinuxNvmeHostPaths paths = {});

  common::Result<NvmeController> Connect(const NvmeConnectSpec& spec) override;
  common::Status Disconnect(std::string_view controller_name) override;
  common::Result<std::vector<NvmeController>> ListControllers() override;
  common::Result<std::string> FindNamespaceDevice(std::string_view subsys_nqn,
                                                  const NvmeNamespaceSelector& selector) override;
  common::Result<NvmeHostIdentity> GetHostIdentity() override;

 private:
  common::Result<NvmeController> ReadController(const std::string& name);
  common::Status EnsureFastIoFail(const std::string& name, int seconds);
  common::Result<std::string> WriteFabrics(const std::string& options);

  LinuxNvmeHostPaths paths_;
};

}  // namespace agent::sys
