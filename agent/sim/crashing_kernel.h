// CrashingKernel: a NodeKernel decorator that lets exactly `budget` state-changing kernel calls
// through and then fails every call, reads included, as if the agent had been killed (kill -9)
// right after its budget-th step. Crash-replay tests run a pass through it with budget 0, 1,
// 2, ... and then let fresh reconcilers on the undecorated kernel finish: the end state must be
// the same as without the crash, with nothing duplicated or lost.
//
// Thread contract: not thread-safe (tests drive it from one thread).
#pragma once

#include <string>

#include "agent/volume.h"

namespace agent::sim {

class CrashingKernel {
 public:
  CrashingKernel(NodeKernel inner, int budget);
  NodeKernel Kernel();
  // State-changing calls made so far (those let through, plus the one that found the budget
  // spent).
  int steps() const { return steps_; }
  bool crashed() const { return crashed_; }

  // Counts a state-changing call: OK while within the budget, else the crash.
  common::Status Step(const char* what);
  // Reads fail after the crash.
  common::Status Read(const char* what);

 private:
  class Drives;
  class Partitions;
  class Filesystem;
  class Nvmet;
  class Host;
  class Md;

  NodeKernel inner_;
  int budget_;
  int steps_ = 0;
  bool crashed_ = false;
  std::shared_ptr<sys::Drives> drives_;
  std::shared_ptr<sys::Partitions> partitions_;
  std::shared_ptr<sys::Filesystem> fs_;
  std::shared_ptr<sys::NvmetTarget> nvmet_;
  std::shared_ptr<sys::NvmeHost> host_;
  std::shared_ptr<sys::Md> md_;
};

}  // namespace agent::sim
