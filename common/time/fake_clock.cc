#include "common/time/fake_clock.h"

#include <algorithm>

namespace common::time {
namespace {

// 2026-11-22T10:00:00Z.
constexpr std::chrono::seconds kDefaultWallTime(1795341600);

// Far from zero, so code that treats a zero time_point as "unset" is not fooled.
constexpr std::chrono::hours kDefaultSteadyTime(1000);

// How long Advance waits for a woken waiter before notifying it again. A notification is lost
// only when it lands between a waiter's registration and its wait on the condition variable
// (Advance does not take the waiter's mutex), so this retry is rare and short.
constexpr std::chrono::milliseconds kRenotifyInterval(1);

}  // namespace

FakeClock::FakeClock() : FakeClock(std::chrono::system_clock::time_point(kDefaultWallTime)) {}

FakeClock::FakeClock(std::chrono::system_clock::time_point wall_time)
    : wall_(wall_time), steady_(kDefaultSteadyTime) {}

FakeClock::~FakeClock() = default;

std::chrono::system_clock::time_point FakeClock::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wall_;
}

std::chrono::steady_clock::time_point FakeClock::SteadyNow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return steady_;
}

bool FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          std::chrono::steady_clock::time_point deadline,
                          const std::function<bool()>& ready) {
  if (ready()) return true;

  // Registers `waiter` for the lifetime of this object, so that it is removed even if `ready`
  // throws. Lock order: the caller's mutex, then mu_; Advance never takes the caller's mutex.
  class Registration {
   public:
    Registration(FakeClock& clock, Waiter& waiter) : clock_(clock) {
      it_ = clock_.waiters_.insert(clock_.waiters_.end(), &waiter);
      clock_.changed_.notify_all();
    }
    ~Registration() {
      std::lock_guard<std::mutex> guard(clock_.mu_);
      clock_.waiters_.erase(it_);
      clock_.changed_.notify_all();
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    FakeClock& clock_;
    std::list<Waiter*>::iterator it_;
  };

  Waiter waiter{deadline, &cv};
  std::unique_lock<std::mutex> guard(mu_);
  if (steady_ >= deadline) {
    guard.unlock();
    return ready();  // Re-checked in case `ready` reads this clock.
  }
  Registration registration(*this, waiter);
  guard.unlock();

  for (;;) {
    cv.wait(lock);
    if (ready()) return true;
    guard.lock();
    const bool expired = waiter.expired;
    guard.unlock();
    if (expired) return false;
  }
}

void FakeClock::Advance(std::chrono::steady_clock::duration d) {
  d = std::max(d, std::chrono::steady_clock::duration::zero());
  std::unique_lock<std::mutex> lock(mu_);
  d = std::min(d, std::chrono::steady_clock::time_point::max() - steady_);  // Saturate.
  steady_ += d;
  const auto wall_d = std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  // (max() - wall_ cannot overflow once wall_ is known to be after the epoch.)
  wall_ = wall_.time_since_epoch().count() > 0 &&
                  wall_d > std::chrono::system_clock::time_point::max() - wall_
              ? std::chrono::system_clock::time_point::max()
              : wall_ + wall_d;
  for (Waiter* w : waiters_) {
    if (w->deadline <= steady_) w->expired = true;
  }
  // Wake the expired waiters and wait until all of them have left WaitUntil. A waiter's
  // condition variable is alive while it is registered, and it cannot unregister while we hold
  // mu_, so notifying under mu_ is safe.
  for (;;) {
    bool pending = false;
    for (Waiter* w : waiters_) {
      if (w->expired) {
        pending = true;
        w->cv->notify_all();
      }
    }
    if (!pending) return;
    changed_.wait_for(lock, kRenotifyInterval);
  }
}

void FakeClock::SetTime(std::chrono::system_clock::time_point t) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ = t;
}

size_t FakeClock::WaitersForTest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiters_.size();
}

std::chrono::steady_clock::time_point FakeClock::NextDeadlineForTest() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::chrono::steady_clock::time_point::max();
  for (const Waiter* w : waiters_) next = std::min(next, w->deadline);
  return next;
}

bool FakeClock::AwaitWaitersForTest(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return waiters_.size() >= count; });
}

}  // namespace common::time
