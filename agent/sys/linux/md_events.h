// LinuxMdStatWatcher: MdEventSource on /proc/mdstat. Reading the file to its end arms it; the
// kernel then reports POLLPRI (with POLLERR) to poll() at the next md event — any array's member
// failing, being removed or added, an array starting, stopping or finishing a resync — and the
// watcher reads it again to re-arm.
//
// Thread contract: Wait() from one thread; Interrupt() from any thread (an eventfd wakes Wait).
#pragma once

#include <memory>
#include <string>

#include "agent/sys/linux/unique_fd.h"
#include "agent/sys/md_events.h"

namespace agent::sys {

class LinuxMdStatWatcher final : public MdEventSource {
 public:
  // Opens and arms `path`. NotFound when it does not exist (no md driver loaded), the errno's
  // status otherwise.
  static common::Result<std::unique_ptr<LinuxMdStatWatcher>> Open(
      std::string path = "/proc/mdstat");

  common::Result<bool> Wait(std::chrono::milliseconds timeout) override;
  void Interrupt() override;
  // The file itself: POLLPRI (with POLLERR) at the next md event.
  Descriptor ReadyDescriptor() const override { return {file_.get(), Readiness::kPriority}; }

 private:
  LinuxMdStatWatcher(std::string path, UniqueFd file, UniqueFd wake)
      : path_(std::move(path)), file_(std::move(file)), wake_(std::move(wake)) {}
  // Reads the file from the start to its end (re-arms POLLPRI).
  common::Status Rearm();

  std::string path_;
  UniqueFd file_;
  UniqueFd wake_;
};

}  // namespace agent::sys
