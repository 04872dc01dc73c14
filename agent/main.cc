// meshstor-agent: the per-node DaemonSet that carries out the member instructions of
// MeshStorVolume on its node (agent/agent.h) on the Linux kernel layer (agent/sys/linux), or,
// with --simulate N, runs N agents for simulated nodes in this one process on the in-memory
// kernel layer (agent/sim) to exercise and benchmark the control plane.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include "agent/agent.h"
#include "agent/failpoints.h"
#include "agent/sim/sim_node.h"
#include "agent/sys/linux/drives.h"
#include "agent/sys/linux/exec.h"
#include "agent/sys/linux/filesystem.h"
#include "agent/sys/linux/md.h"
#include "agent/sys/linux/md_events.h"
#include "agent/sys/linux/modules.h"
#include "agent/sys/linux/nvme_host.h"
#include "agent/sys/linux/nvmet.h"
#include "agent/sys/linux/partitions.h"
#include "agent/sys/linux/uevents.h"
#include "common/api/v1alpha1/codec.h"
#include "common/app/app.h"
#include "common/app/runtime.h"
#include "common/kube/informer.h"
#include "common/kube/resource.h"
#include "common/log/log.h"
#include "common/time/clock.h"

namespace {

struct LinuxKernel {
  agent::sys::LinuxExec exec;
  agent::sys::LinuxDrives drives;
  agent::sys::LinuxPartitions partitions;
  agent::sys::LinuxFilesystem fs{exec};
  agent::sys::LinuxNvmetTarget nvmet;
  agent::sys::LinuxNvmeHost host;
  agent::sys::LinuxMd md{exec};
  agent::NodeKernel Kernel() { return {&drives, &partitions, &fs, &nvmet, &host, &md}; }
};

}  // namespace

int main(int argc, char** argv) {
  using common::log::Root;
  common::app::CommonOptions common_options;
  common_options.metrics_address = ":9810";
  std::string node_name;
  std::string address;
  std::string staging_dir = "/var/lib/meshstor/staging";
  std::string kubelet_dir = "/var/lib/kubelet";
  std::chrono::milliseconds resync = std::chrono::seconds(10);
  int64_t rebuild_mib = 0;
  int64_t simulate = 0;
  int64_t simulate_drives = 2;
  int64_t simulate_drive_gib = 1024;

  common::config::Config config("meshstor-agent",
                                "Runs the MeshStor node agent (drives, exports, arrays, mounts)");
  common::app::AddCommonOptions(config, &common_options);
  config.AddString("node-name", &node_name,
                   "Kubernetes name of this node (from the downward API: MESHSTOR_NODE_NAME)");
  config.AddString(
      "address", &address,
      "This node's NVMe/TCP address for exports (MESHSTOR_ADDRESS, e.g. status.hostIP)");
  config.AddString("staging-dir", &staging_dir,
                   "Where volumes are mounted on their consumer when the CSI shim names no "
                   "staging path");
  config.AddString("kubelet-dir", &kubelet_dir,
                   "kubelet's root directory; staging paths and publish targets must lie below it "
                   "(or below --staging-dir)");
  config.AddDuration("resync", &resync, "Full pass at least this often",
                     {.min = std::chrono::seconds(1)});
  config.AddInt64("rebuild-bandwidth-mib", &rebuild_mib,
                  "Resync/recovery bandwidth (MiB/s) of this node's arrays together, shared "
                  "equally by those rebuilding (0: the kernel's own limits)",
                  {.min = 0, .max = 1 << 20});
  config.AddInt64("simulate", &simulate,
                  "Run this many simulated nodes (<node-name>-1..N) on the in-memory kernel layer "
                  "instead of this node's kernel (0: real node)",
                  {.min = 0, .max = 10000});
  config.AddInt64("simulate-drives", &simulate_drives, "Drives per simulated node",
                  {.min = 1, .max = 64});
  config.AddInt64("simulate-drive-gib", &simulate_drive_gib, "Size of each simulated drive (GiB)",
                  {.min = 1, .max = 1 << 20});
  if (int code = common::app::LoadOrExit(config, common_options, argc, argv); code >= 0) {
    return code;
  }
  if (node_name.empty()) {
    std::fprintf(stderr, "flag --node-name (or MESHSTOR_NODE_NAME) is required\n");
    return 2;
  }

  // Deterministic crashes at a kernel step for the fault suite (agent/failpoints.h): only with
  // MESHSTOR_FAILPOINTS_ENABLED=1; a bad MESHSTOR_CRASH_AT then stops the agent here.
  std::string failpoints_ignored;
  auto failpoints = agent::FailpointsFromEnvironment(
      [](const char* name) { return std::getenv(name); }, &failpoints_ignored);
  if (!failpoints.ok()) {
    Root().Error(failpoints.status(), "Bad failpoint settings");
    return 2;
  }
  if (!failpoints_ignored.empty()) Root().Info(failpoints_ignored);
  if (!failpoints->empty() && simulate > 0) {
    std::fprintf(stderr, "%s cannot be used with --simulate\n",
                 std::string(agent::kCrashAtEnv).c_str());
    return 2;
  }

  if (simulate == 0) {
    // Refuse to start, with one message naming what the kernel lacks, rather than fail later.
    agent::sys::LinuxExec exec;
    const char* modprobe =
        ::access("/usr/sbin/modprobe", X_OK) == 0 ? "/usr/sbin/modprobe" : "/sbin/modprobe";
    if (auto s = agent::sys::EnsureKernelModules(exec, agent::sys::RequiredKernelModules(),
                                                 "/sys/module", modprobe);
        !s.ok()) {
      Root().Error(s, "Cannot run on this node");
      return 1;
    }
  }

  // The process's event loop: every agent's passes, timers and kernel events, and the signals.
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  auto runtime =
      common::app::Runtime::Start("agent", common_options, common::kube::MeshStorNodeDevices());
  if (!runtime.ok()) {
    Root().Error(runtime.status(), "Could not start");
    return 1;
  }
  auto& clock = common::time::RealClock::Get();
  std::unique_ptr<LinuxKernel> linux_kernel;
  std::unique_ptr<agent::FailpointKernel> failpoint_kernel;
  std::unique_ptr<agent::sys::LinuxUeventListener> uevents;
  std::unique_ptr<agent::sys::LinuxMdStatWatcher> md_events;
  std::unique_ptr<agent::sim::SimCluster> cluster;
  auto metrics = agent::AgentMetrics::Register((*runtime)->registry(), simulate > 0);
  if (!metrics.ok()) {
    Root().Error(metrics.status(), "Could not register the metrics");
    return 1;
  }
  // Declared before the agents: stopped after them (join), destroyed after them.
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorVolume>> shared_volumes;
  std::unique_ptr<agent::VolumeIndex> shared_volume_index;  // on shared_volumes
  std::unique_ptr<common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>> shared_devices;
  std::vector<std::unique_ptr<agent::Agent>> agents;

  if (simulate == 0) {
    linux_kernel = std::make_unique<LinuxKernel>();
    auto listener = agent::sys::LinuxUeventListener::Open();
    if (listener.ok()) {
      uevents = std::move(listener).value();
    } else {
      Root().Error(listener.status(), "No kernel uevents; relying on the periodic pass");
    }
    auto watcher = agent::sys::LinuxMdStatWatcher::Open();
    if (watcher.ok()) {
      md_events = std::move(watcher).value();
    } else {
      Root().Error(watcher.status(),
                   "No MD events (/proc/mdstat); a member's exit from an array is recorded by "
                   "the periodic pass only");
    }
    agent::AgentConfig cfg;
    cfg.settings.node = node_name;
    cfg.settings.address = address;
    cfg.settings.staging_root = staging_dir;
    cfg.settings.kubelet_root = kubelet_dir;
    cfg.settings.rebuild_kib_per_s = static_cast<uint64_t>(rebuild_mib) * 1024;
    cfg.resync = resync;
    cfg.io = &io;
    agent::NodeKernel kernel = linux_kernel->Kernel();
    if (!failpoints->empty()) {
      std::string armed;
      for (const auto& f : *failpoints) armed += (armed.empty() ? "" : ",") + agent::Describe(f);
      Root().Info("FAILPOINTS ARMED: the agent SIGKILLs itself at the first call of each",
                  {{"failpoints", armed}});
      failpoint_kernel =
          std::make_unique<agent::FailpointKernel>(kernel, *failpoints, &agent::KillSelf);
      kernel = failpoint_kernel->Kernel();
    }
    agents.push_back(std::make_unique<agent::Agent>((*runtime)->client(), kernel, uevents.get(),
                                                    cfg, clock, metrics->get(), md_events.get()));
  } else {
    cluster = std::make_unique<agent::sim::SimCluster>();
    std::vector<std::string> names;
    for (int64_t i = 1; i <= simulate; ++i) {
      names.push_back(fmt::format("{}-{}", node_name, i));
      auto& node = cluster->AddNode(names.back());
      for (int64_t d = 0; d < simulate_drives; ++d) {
        node.AddDrive(fmt::format("nvme{}n1", d), static_cast<uint64_t>(simulate_drive_gib) << 30);
      }
    }
    const agent::Peers addresses = cluster->PeersView();
    // The simulated nodes share their storage model: their passes take turns on one strand.
    const agent::PassStrand pass_strand = boost::asio::make_strand(io);
    // And one list and watch per resource: each agent's own would cost N watches, every event
    // decoded N times and N copies of every object.
    common::kube::InformerOptions options;
    shared_volumes =
        std::make_unique<common::kube::Informer<common::api::v1alpha1::MeshStorVolume>>(
            (*runtime)->client(), common::kube::MeshStorVolumes(),
            common::api::v1alpha1::DecodeMeshStorVolume, options, clock);
    // The volumes filed by node once for all the agents: a pass reads its node's volumes only,
    // and a change wakes only the agents of the nodes it involves.
    shared_volume_index = std::make_unique<agent::VolumeIndex>(*shared_volumes);
    shared_devices =
        std::make_unique<common::kube::Informer<common::api::v1alpha1::MeshStorNodeDevice>>(
            (*runtime)->client(), common::kube::MeshStorNodeDevices(),
            common::api::v1alpha1::DecodeMeshStorNodeDevice, options, clock);
    for (const auto& name : names) {
      agent::AgentConfig cfg;
      cfg.settings.node = name;
      cfg.settings.address = addresses.at(name).address;
      cfg.settings.staging_root = staging_dir;
      cfg.settings.kubelet_root = kubelet_dir;
      cfg.settings.rebuild_kib_per_s = static_cast<uint64_t>(rebuild_mib) * 1024;
      cfg.resync = resync;
      cfg.simulated = true;
      cfg.io = &io;
      cfg.pass_strand = pass_strand;
      cfg.shared_volumes = shared_volume_index.get();
      cfg.shared_devices = shared_devices.get();
      agents.push_back(std::make_unique<agent::Agent>(
          (*runtime)->client(), cluster->node(name).Kernel(), nullptr, cfg, clock, metrics->get()));
    }
    Root().Info("SIMULATED kernel layer: no disk is touched",
                {{"nodes", simulate}, {"drivesPerNode", simulate_drives}});
  }
  // SIGTERM or SIGINT asks every agent to stop at once (passes not yet begun are skipped; the
  // ones under way end), then the io_context runs out of work and the threads below return.
  auto work = boost::asio::make_work_guard(io);
  std::atomic<int> stop_signal{0};
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    stop_signal = sig;
    Root().Info("Stopping", {{"signal", sig}});
    for (auto& a : agents) a->RequestStop();
    work.reset();
  });
  // Two threads: signals and kernel events are served while a pass runs.
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&io] { io.run(); });
  auto join = [&] {
    for (auto& t : threads) t.join();
    for (auto& a : agents) a->Stop();
    if (shared_volumes) shared_volumes->Stop();
    if (shared_devices) shared_devices->Stop();
  };

  // Shared informers start once every agent has added its handler.
  if (shared_volumes) shared_volumes->Start();
  if (shared_devices) shared_devices->Start();
  for (auto& a : agents) {
    if (auto s = a->Start(); !s.ok()) {
      Root().Error(s, "Could not start the informers");
      io.stop();
      join();
      return 1;
    }
  }
  for (auto& a : agents) {
    for (int waited = 1; stop_signal == 0 && !a->WaitForSync(std::chrono::seconds(1)); ++waited) {
      if (waited % 5 == 0) Root().Info("Waiting for the API server (informers not synced yet)");
    }
    if (stop_signal != 0) break;
    a->Run();
  }
  if (stop_signal == 0) {
    Root().Info("Started agent", {{"node", node_name}, {"simulated", simulate > 0}});
  }
  join();
  return 0;
}
