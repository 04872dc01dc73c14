// meshstor-verify: writes numbered, checksummed blocks and verifies them later (block.h).
//
//   meshstor-verify write  --file F --run ID --slots N [--count N] [--ack-url URL]
//                          [--ack-interval-ms 100] [--fsync] [--pause-ms 0]
//   meshstor-verify verify --file F --run ID --slots N --acked N
//
// write: O_DIRECT|O_DSYNC (or O_DIRECT + fdatasync with --fsync) writes 0, 1, 2, ... to slot
// seq % slots of F, one at a time; a write is acknowledged when the call returned. A failed
// write is retried (same seq) every 0.5 s and is not acknowledged until it succeeds. Every
// --ack-interval-ms a reporter thread POSTs the acknowledged count (block.h FormatAck) to
// --ack-url when it changed (and at least every second); on SIGTERM/SIGINT or after --count
// writes the writer stops, POSTs the final count, prints it and exits 0.
// verify: reads every slot holding one of the first --acked writes (O_DIRECT) and prints the
// report (block.h FormatReport); exit 0 when nothing was lost, 2 when something was, 1 on errors.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status/status.h"
#include "tools/verifier/block.h"
#include "tools/verifier/options.h"

namespace verifier {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int /*sig*/) { g_stop.store(true); }

using Clock = std::chrono::steady_clock;

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;

AlignedBuffer AllocBlock() {
  void* p = nullptr;
  if (posix_memalign(&p, kBlockSize, kBlockSize) != 0) {
    std::fprintf(stderr, "meshstor-verify: out of memory\n");
    std::exit(1);
  }
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// One HTTP/1.0 POST with a 2 s budget; OK on a 2xx answer.
common::Status Post(const Url& url, const std::string& body) {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return common::ErrnoToStatus(errno, "socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(url.port);
  if (inet_pton(AF_INET, url.host.c_str(), &addr.sin_addr) != 1) {
    return common::InvalidArgumentError("bad IPv4 address {}", url.host);
  }
  auto deadline = Clock::now() + std::chrono::seconds(2);
  auto wait = [&](short events) -> common::Status {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return common::DeadlineExceededError("POST to {}:{} timed out", url.host, url.port);
    }
    pollfd p{fd.get(), events, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0) {
      return common::ErrnoToStatus(errno, "poll");
    }
    if (rc == 0) {
      return common::DeadlineExceededError("POST to {}:{} timed out", url.host, url.port);
    }
    return common::OkStatus();
  };
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      return common::ErrnoToStatus(errno, "connect");
    }
    RETURN_IF_ERROR(wait(POLLOUT));
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return common::ErrnoToStatus(err, "connect");
    }
  }
  std::string req =
      "POST " + url.path + " HTTP/1.0\r\nHost: " + url.host +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      RETURN_IF_ERROR(wait(POLLOUT));
      continue;
    }
    if (n < 0) {
      return common::ErrnoToStatus(errno, "send");
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[256];
  while (answer.find("\r\n") == std::string::npos && answer.size() < 1024) {
    ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EAGAIN) {
      RETURN_IF_ERROR(wait(POLLIN));
      continue;
    }
    if (n <= 0) {
      break;
    }
    answer.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.0 200 OK"
  if (answer.size() < 12 || answer[9] != '2') {
    return common::UnavailableError("POST {}: answer \"{}\"", url.path,
                                    answer.substr(0, answer.find('\r')));
  }
  return common::OkStatus();
}

// Shared by the writer and the reporter thread.
class AckTracker {
 public:
  explicit AckTracker(AckState initial) : state_(initial) {}
  void Acked(uint64_t count, uint64_t latency_ms) {
    std::lock_guard<std::mutex> l(mu_);
    state_.acked = count;
    state_.max_latency_ms = std::max(state_.max_latency_ms, latency_ms);
  }
  void Error() {
    std::lock_guard<std::mutex> l(mu_);
    ++state_.errors;
  }
  AckState Get() {
    std::lock_guard<std::mutex> l(mu_);
    return state_;
  }

 private:
  std::mutex mu_;
  AckState state_;
};

void Reporter(const Url& url, const Options& o, AckTracker& acks, std::atomic<bool>& done) {
  uint64_t reported = UINT64_MAX;
  auto last_ok = Clock::now() - std::chrono::hours(1);
  uint64_t failures = 0;
  while (true) {
    bool finishing = done.load();
    AckState s = acks.Get();
    bool due = s.acked != reported || Clock::now() - last_ok > std::chrono::seconds(1);
    if (due) {
      common::Status st = Post(url, FormatAck(s));
      if (st.ok()) {
        reported = s.acked;
        last_ok = Clock::now();
      } else if (failures++ % 50 == 0) {
        std::fprintf(stderr, "meshstor-verify: reporting acked=%llu: %s\n",
                     static_cast<unsigned long long>(s.acked), st.ToString().c_str());
      }
    }
    if (finishing) {
      // The final count must reach the host: a few more tries when it did not.
      for (int i = 0; i < 20 && reported != s.acked; ++i) {
        if (Post(url, FormatAck(s)).ok()) {
          reported = s.acked;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
      }
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o.ack_interval_ms));
  }
}

int Write(const Options& o) {
  std::optional<Url> url;
  if (!o.ack_url.empty()) {
    common::Result<Url> u = ParseUrl(o.ack_url);
    if (!u.ok()) {
      std::fprintf(stderr, "meshstor-verify: --ack-url: %s\n", u.status().ToString().c_str());
      return 1;
    }
    url = *u;
  }
  int flags = O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC | (o.fsync ? 0 : O_DSYNC);
  Fd fd(open(o.file.c_str(), flags, 0644));
  if (fd.get() < 0) {
    std::fprintf(stderr, "meshstor-verify: open %s: %s\n", o.file.c_str(), std::strerror(errno));
    return 1;
  }
  AckTracker acks(AckState{.run_id = o.run_id, .slots = o.slots});
  std::atomic<bool> done{false};
  std::thread reporter;
  if (url) {
    reporter = std::thread([&] { Reporter(*url, o, acks, done); });
  }
  AlignedBuffer buf = AllocBlock();
  std::span<uint8_t> block(buf.get(), kBlockSize);
  uint64_t seq = 0;
  uint64_t errors = 0;
  while (!g_stop.load() && (o.count == 0 || seq < o.count)) {
    uint64_t offset = (seq % o.slots) * kBlockSize;
    EncodeBlock(o.run_id, seq, offset, block);
    auto t0 = Clock::now();
    while (!g_stop.load()) {
      ssize_t n = pwrite(fd.get(), block.data(), kBlockSize, static_cast<off_t>(offset));
      bool ok = n == static_cast<ssize_t>(kBlockSize);
      int err = n < 0 ? errno : EIO;
      if (ok && o.fsync && fdatasync(fd.get()) != 0) {
        ok = false;
        err = errno;
      }
      if (ok) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        acks.Acked(seq + 1, static_cast<uint64_t>(ms.count()));
        ++seq;
        break;
      }
      acks.Error();
      if (errors++ % 20 == 0) {
        std::fprintf(stderr, "meshstor-verify: write seq %llu at %llu: %s (retrying)\n",
                     static_cast<unsigned long long>(seq), static_cast<unsigned long long>(offset),
                     std::strerror(err));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (o.pause_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.pause_ms));
    }
  }
  done.store(true);
  if (reporter.joinable()) {
    reporter.join();
  }
  std::printf("meshstor-verify: wrote %s\n", FormatAck(acks.Get()).c_str());
  return 0;
}

int Verify(const Options& o) {
  Fd fd(open(o.file.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (fd.get() < 0) {
    std::fprintf(stderr, "meshstor-verify: open %s: %s\n", o.file.c_str(), std::strerror(errno));
    return 1;
  }
  AlignedBuffer buf = AllocBlock();
  ReadSlot read = [&](uint64_t slot, std::span<uint8_t> out) -> common::Status {
    ssize_t n = pread(fd.get(), buf.get(), kBlockSize, static_cast<off_t>(slot * kBlockSize));
    if (n < 0) {
      return common::ErrnoToStatus(errno, "pread");
    }
    std::memset(out.data(), 0, out.size());  // a short read (end of file) reads as zero
    std::memcpy(out.data(), buf.get(), static_cast<size_t>(n));
    return common::OkStatus();
  };
  common::Result<Report> r = VerifyRing(o.run_id, *o.acked, o.slots, read);
  if (!r.ok()) {
    std::fprintf(stderr, "meshstor-verify: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::fputs(FormatReport(*r).c_str(), stdout);
  return r->lost == 0 ? 0 : 2;
}

}  // namespace
}  // namespace verifier

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  common::Result<verifier::Options> o = verifier::ParseOptions(args);
  if (!o.ok()) {
    std::fprintf(stderr,
                 "meshstor-verify: %s\nusage: meshstor-verify write --file F --run ID --slots N "
                 "[--count N] [--ack-url URL] [--ack-interval-ms MS] [--fsync] [--pause-ms MS]\n"
                 "       meshstor-verify verify --file F --run ID --slots N --acked N\n",
                 o.status().ToString().c_str());
    return 1;
  }
  std::signal(SIGTERM, verifier::OnSignal);
  std::signal(SIGINT, verifier::OnSignal);
  return o->mode == verifier::Mode::kWrite ? verifier::Write(*o) : verifier::Verify(*o);
}
