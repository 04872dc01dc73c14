// LinuxNvmeHost: NvmeHost on /dev/nvme-fabrics and sysfs.
//
// Connect writes the option string ("transport=tcp,traddr=…,nqn=…,hostnqn=…,…") to
// /dev/nvme-fabrics and reads the answer ("instance=N,cntlid=M") from the same descriptor, as
// nvme-cli does, so no program is run. fast_io_fail_tmo goes into the option string; if the
// kernel rejects the string with EINVAL, the connect is retried without it and the value is
// written to /sys/class/nvme/nvmeN/fast_io_fail_tmo instead (kernel-lab.md pitfall 6).
//
// FindNamespaceDevice scans /sys/block only when it has to: a scan notes where every head
// namespace it passed was found (subsystem and nsid, subsystem and uuid -> kernel name), and the
// next lookup reads that one device's attributes again and returns it only if they still match
// (a name the kernel gave to another namespace meanwhile is not trusted); otherwise it scans.
// A consumer looks up each imported namespace on every pass, and a scan reads every head
// namespace: O(namespaces) per lookup, O(namespaces^2) per pass before the notes.
//
// All paths are injectable so unit tests can run the sysfs readers against a temporary tree.
//
// Thread contract: safe for concurrent use (the notes are behind a mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
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
  common::Result<std::string> SubsystemOfDevice(std::string_view device) override;
  common::Result<NvmeHostIdentity> GetHostIdentity() override;

  // How many times FindNamespaceDevice listed /sys/block (tests).
  int64_t namespace_scans() const;

 private:
  // Whether the head namespace `name` belongs to `subsys_nqn` and matches the selector (whose
  // uuid is lower-case), read from sysfs now.
  bool NamespaceMatches(const std::string& name, std::string_view subsys_nqn,
                        const NvmeNamespaceSelector& selector);
  static std::string NoteKey(std::string_view subsys_nqn, const NvmeNamespaceSelector& selector);

  common::Result<NvmeController> ReadController(const std::string& name);
  common::Status EnsureFastIoFail(const std::string& name, int seconds);
  common::Result<std::string> WriteFabrics(const std::string& options);

  LinuxNvmeHostPaths paths_;
  mutable std::mutex mu_;
  // NoteKey -> kernel name of the head namespace last seen there (see the header comment).
  std::map<std::string, std::string, std::less<>> noted_;
  int64_t namespace_scans_ = 0;
};

}  // namespace agent::sys
