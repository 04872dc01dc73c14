// Informer<T> over a scripted API (a list, then watch events the test sends), in both cache
// modes: decoded objects, and compressed JSON decoded on every read.
#include "common/kube/informer.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "common/api/v1alpha1/codec.h"
#include "common/compress/slab_pool.h"
#include "common/time/clock.h"

namespace common::kube {
namespace {

namespace v1 = api::v1alpha1;
using namespace std::chrono_literals;

// Serves one list (`items` at `list_rv`) to every GET of the collection, and to every watch the
// events pushed so far, then holds the watch open until it is cancelled.
class ScriptTransport final : public Transport {
 public:
  std::vector<std::string> items;
  std::string list_rv = "10";

  void Push(const std::string& type, const std::string& object) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n");
    cv_.notify_all();
  }

  Result<HttpResponse> Do(const HttpRequest& request) override {
    if (request.method != "GET") return UnimplementedError("{} is not scripted", request.method);
    std::string body = R"({"apiVersion":"csi.meshstor.io/v1alpha1","kind":"MeshStorVolumeList",)";
    body += R"("metadata":{"resourceVersion":")" + list_rv + R"("},"items":[)";
    for (size_t i = 0; i < items.size(); ++i) body += (i ? "," : "") + items[i];
    body += "]}";
    return HttpResponse{200, body};
  }

  Result<int> Stream(const HttpRequest& request,
                     const std::function<bool(std::string_view)>& on_data, std::string*) override {
    std::stop_callback wake(request.cancel, [this] {
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu_);
    size_t sent = 0;
    while (true) {
      cv_.wait(lock, [&] { return request.cancel.stop_requested() || sent < events_.size(); });
      if (request.cancel.stop_requested()) return Status(StatusCode::kCancelled, "watch cancelled");
      std::string chunk = events_[sent++];
      lock.unlock();
      const bool more = on_data(chunk);
      lock.lock();
      if (!more) return 200;
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> events_;
};

v1::MeshStorVolume Volume(const std::string& name, const std::string& rv, const std::string& node) {
  v1::MeshStorVolume v;
  v.metadata.name = name;
  v.metadata.resource_version = rv;
  v.metadata.uid = "uid-" + name;
  v.spec.capacity_bytes = 1 << 30;
  v.spec.replica_count = 2;
  v.spec.stripe_width = 1;
  v.spec.member_missing_timeout = 900;
  v.spec.sector_size = 4096;
  v.spec.consumer_node = node;
  v1::Member m;
  m.index = 0;
  m.node = node;
  m.drive = "nvme0n1";
  m.size_bytes = 1 << 30;
  m.namespace_id = 3;
  v.spec.members.push_back(m);
  v.status.phase = v1::VolumePhase::kSynced;
  v.status.sync_percentage = "100%";
  return v;
}

// What the API sends: the object with a field MeshStorVolume does not hold.
std::string Sent(const v1::MeshStorVolume& v) {
  std::string json = v1::EncodeMeshStorVolume(v);
  const std::string meta = R"("metadata":{)";
  json.insert(json.find(meta) + meta.size(),
              R"("managedFields":[{"manager":"kubectl","operation":"Update"}],)");
  return json;
}

struct Fixture {
  ScriptTransport transport;
  Client client{transport};
  std::unique_ptr<Informer<v1::MeshStorVolume>> informer;
  std::mutex mu;
  std::vector<Informer<v1::MeshStorVolume>::Change> changes;

  explicit Fixture(bool compressed) {
    const InformerOptions options{.initial_backoff = 10ms, .max_backoff = 50ms};
    if (compressed) {
      informer = std::make_unique<Informer<v1::MeshStorVolume>>(
          client, MeshStorVolumes(), v1::DecodeMeshStorVolume,
          Informer<v1::MeshStorVolume>::Compression{
              v1::EncodeMeshStorVolume, v1::EncodeMeshStorVolume(Volume("dict", "1", "n"))},
          options, time::RealClock::Get());
    } else {
      informer = std::make_unique<Informer<v1::MeshStorVolume>>(
          client, MeshStorVolumes(), v1::DecodeMeshStorVolume, options, time::RealClock::Get());
    }
    informer->AddHandler([this](const auto& c) {
      std::lock_guard<std::mutex> lock(mu);
      changes.push_back(c);
    });
  }

  ~Fixture() { informer->Stop(); }  // before the handler's log goes

  // Waits until `n` changes were told.
  bool WaitForChanges(size_t n) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (changes.size() >= n) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
};

TEST_CASE("Informer caches, tells and hands out the same objects in both cache modes",
          "[unit][kube]") {
  const bool compressed = GENERATE(false, true);
  CAPTURE(compressed);
  Fixture f(compressed);
  const v1::MeshStorVolume a = Volume("a", "5", "n1");
  const v1::MeshStorVolume b = Volume("b", "6", "n2");
  f.transport.items = {
      Sent(a), Sent(b),
      R"({"kind":"MeshStorVolume","metadata":{"name":"bad","resourceVersion":"7"},)"
      R"("spec":{"capacityBytes":"lots"}})"};
  f.informer->Start();
  REQUIRE(f.informer->WaitForSync(5s));
  REQUIRE(f.WaitForChanges(3));

  {
    std::lock_guard<std::mutex> lock(f.mu);
    REQUIRE(f.changes.size() == 3);
    CHECK(f.changes[0].key.name == "a");
    CHECK(f.changes[0].old_obj == nullptr);
    INFO(f.changes[0].decode_error.ToString());
    REQUIRE(f.changes[0].new_obj != nullptr);
    CHECK(*f.changes[0].new_obj == a);
    CHECK(f.changes[1].key.name == "b");
    CHECK(f.changes[2].key.name == "bad");
    CHECK(f.changes[2].new_obj == nullptr);
    CHECK(f.changes[2].decode_error.code() == StatusCode::kInvalidArgument);
  }
  auto got = f.informer->Get({"", "a"});
  REQUIRE(got.ok());
  CHECK(**got == a);
  // A decoded cache hands out its own object each time; a compressed one decodes a new copy.
  auto again = f.informer->Get({"", "a"});
  REQUIRE(again.ok());
  CHECK((*got == *again) == !compressed);
  CHECK(f.informer->Get({"", "bad"}).status().code() == StatusCode::kInvalidArgument);
  CHECK(f.informer->Get({"", "none"}).status().code() == StatusCode::kNotFound);
  CHECK(*f.informer->ResourceVersion({"", "b"}) == "6");
  CHECK(*f.informer->ResourceVersion({"", "bad"}) == "7");
  auto list = f.informer->List();
  REQUIRE(list.size() == 2);
  CHECK(*list[0] == a);
  CHECK(*list[1] == b);
  CHECK(f.informer->Keys().size() == 3);

  // An update: the change carries the version before and after; a deletion the last version.
  v1::MeshStorVolume a2 = Volume("a", "11", "n3");
  a2.status.sync_percentage = "42.5%";
  f.transport.Push("MODIFIED", Sent(a2));
  f.transport.Push("DELETED", Sent(Volume("b", "12", "n2")));
  REQUIRE(f.WaitForChanges(5));
  {
    std::lock_guard<std::mutex> lock(f.mu);
    REQUIRE(f.changes.size() == 5);
    REQUIRE(f.changes[3].old_obj != nullptr);
    CHECK(*f.changes[3].old_obj == a);
    REQUIRE(f.changes[3].new_obj != nullptr);
    CHECK(*f.changes[3].new_obj == a2);
    CHECK(f.changes[4].key.name == "b");
    REQUIRE(f.changes[4].old_obj != nullptr);
    CHECK(*f.changes[4].old_obj == b);
    CHECK(f.changes[4].new_obj == nullptr);
  }
  got = f.informer->Get({"", "a"});
  REQUIRE(got.ok());
  CHECK(**got == a2);
  CHECK(f.informer->Get({"", "b"}).status().code() == StatusCode::kNotFound);
  CHECK(*f.informer->ResourceVersion({"", "a"}) == "11");
  f.informer->Stop();
}

TEST_CASE("A compressed Informer keeps its bytes in an arena that it compacts as they are replaced",
          "[unit][kube]") {
  Fixture f(/*compressed=*/true);
  // Objects with a long incompressible field, so that each version's compressed bytes are many.
  auto object = [](int i, int version) {
    v1::MeshStorVolume v = Volume(fmt::format("v{:03}", i), std::to_string(version), "n1");
    uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i * 1000 + version + 1);
    for (int k = 0; k < 1500; ++k) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      v.metadata.uid += static_cast<char>('a' + x % 26);
    }
    return v;
  };
  constexpr int kObjects = 300;
  for (int i = 0; i < kObjects; ++i) f.transport.items.push_back(Sent(object(i, 1)));
  f.informer->Start();
  REQUIRE(f.informer->WaitForSync(5s));
  REQUIRE(f.WaitForChanges(kObjects));
  const auto first = f.informer->Arena();
  CHECK(first.live_bytes > kObjects * 300);
  CHECK(first.garbage_bytes == 0);

  // Five new versions of every other object (the others' bytes keep every segment in use), then a
  // third of them deleted.
  auto last_version = [](int i) { return i % 2 == 0 ? 6 : 1; };
  for (int version = 2; version <= 6; ++version) {
    for (int i = 0; i < kObjects; i += 2) f.transport.Push("MODIFIED", Sent(object(i, version)));
  }
  for (int i = 0; i < kObjects; i += 3) {
    f.transport.Push("DELETED", Sent(object(i, last_version(i))));
  }
  const int deleted = (kObjects + 2) / 3;
  const size_t changes = kObjects + 5 * kObjects / 2 + deleted;
  REQUIRE(f.WaitForChanges(changes));
  const auto after = f.informer->Arena();
  CAPTURE(after.live_bytes, after.garbage_bytes, after.mapped_bytes, after.compactions);
  CHECK(after.compactions > 0);
  // The garbage of 750 replaced versions is not all kept: at most a quarter of the live bytes
  // or one 128 KiB segment, plus what the segment being filled holds.
  CHECK(after.garbage_bytes <= std::max<size_t>(after.live_bytes / 4, 128 * 1024) + 128 * 1024);
  CHECK(after.mapped_bytes <= after.live_bytes + after.garbage_bytes + 2 * 128 * 1024);
  for (int i = 0; i < kObjects; ++i) {
    auto got = f.informer->Get({"", fmt::format("v{:03}", i)});
    if (i % 3 == 0) {
      CHECK(got.status().code() == StatusCode::kNotFound);
    } else {
      REQUIRE(got.ok());
      CHECK(**got == object(i, last_version(i)));
    }
  }
  CHECK(f.informer->List().size() == static_cast<size_t>(kObjects - deleted));
  std::lock_guard<std::mutex> lock(f.mu);
  REQUIRE(f.changes.size() == changes);
  // The last update of v002 carried its previous version, read back from the arena.
  const auto& last = f.changes[kObjects + 4 * kObjects / 2 + 1];
  CHECK(last.key.name == "v002");
  REQUIRE(last.old_obj != nullptr);
  CHECK(*last.old_obj == object(2, 5));
}

TEST_CASE("A relist after 410 keeps unchanged entries as they are and tells only the changes",
          "[unit][kube]") {
  for (const bool compressed : {false, true}) {
    INFO("compressed " << compressed);
    Fixture f(compressed);
    f.transport.items = {Sent(Volume("v1", "1", "n1")), Sent(Volume("v2", "1", "n1")),
                         Sent(Volume("v3", "1", "n1"))};
    f.informer->Start();
    REQUIRE(f.informer->WaitForSync(5s));
    REQUIRE(f.WaitForChanges(3));
    // The next list: v1 unchanged, v2 in a new version, v3 gone, v4 new. (Every watch replays
    // the 410, so the informer relists again and again; the later lists change nothing.)
    f.transport.items = {Sent(Volume("v1", "1", "n1")), Sent(Volume("v2", "2", "n2")),
                         Sent(Volume("v4", "2", "n1"))};
    f.transport.list_rv = "20";
    f.transport.Push("ERROR",
                     R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired",)"
                     R"("message":"too old resource version","code":410})");
    REQUIRE(f.WaitForChanges(6));
    for (int i = 0; i < 100 && f.informer->RelistCount() < 3; ++i)
      std::this_thread::sleep_for(10ms);
    CHECK(f.informer->RelistCount() >= 3);
    {
      std::lock_guard<std::mutex> lock(f.mu);
      REQUIRE(f.changes.size() == 6);
      std::vector<std::string> told;
      for (size_t i = 3; i < 6; ++i) {
        const auto& c = f.changes[i];
        told.push_back(c.key.name + (c.old_obj ? " old" : "") + (c.new_obj ? " new" : ""));
      }
      std::sort(told.begin(), told.end());
      CHECK(told == std::vector<std::string>{"v2 old new", "v3 old", "v4 new"});
    }
    auto v1 = f.informer->Get({"", "v1"});
    REQUIRE(v1.ok());
    CHECK(**v1 == Volume("v1", "1", "n1"));
    auto v2 = f.informer->Get({"", "v2"});
    REQUIRE(v2.ok());
    CHECK((*v2)->spec.consumer_node == "n2");
    CHECK(f.informer->Get({"", "v3"}).status().code() == StatusCode::kNotFound);
    std::vector<std::string> keys;
    for (const ObjectKey& k : f.informer->Keys()) keys.push_back(k.name);
    CHECK(keys == std::vector<std::string>{"v1", "v2", "v4"});
  }
}

TEST_CASE("An Informer keeps its cache's keys and nodes in the slab pool", "[unit][kube]") {
  if (!compress::SlabPool::kEnabled) {
    WARN("skipped: built with AddressSanitizer, where SlabAllocator uses operator new");
    return;
  }
  const size_t used0 = compress::SlabPool::GetStats().used_bytes;
  // Names as the CSI shim gives volumes (40 characters, past std::string's inline 15).
  auto name = [](int i) { return fmt::format("pvc-{:08}-0000-4000-8000-000000000000", i); };
  constexpr int kObjects = 200;
  {
    Fixture f(/*compressed=*/true);
    for (int i = 0; i < kObjects; ++i) {
      f.transport.items.push_back(Sent(Volume(name(i), "1", "n1")));
    }
    f.informer->Start();
    REQUIRE(f.informer->WaitForSync(5s));
    REQUIRE(f.WaitForChanges(kObjects));
    // Each object: its map node and its 40-character name (a 48-byte slot).
    const size_t used = compress::SlabPool::GetStats().used_bytes - used0;
    CAPTURE(used);
    CHECK(used >= kObjects * (48 + 64));
    CHECK(used < kObjects * 512);
    // Found by ObjectKey, listed with its name.
    auto got = f.informer->Get({"", name(7)});
    REQUIRE(got.ok());
    CHECK((*got)->metadata.name == name(7));
    CHECK(f.informer->Keys().at(199).name == name(199));

    for (int i = 0; i < kObjects; ++i)
      f.transport.Push("DELETED", Sent(Volume(name(i), "2", "n1")));
    REQUIRE(f.WaitForChanges(2 * kObjects));
    CHECK(f.informer->Keys().empty());
    CHECK(compress::SlabPool::GetStats().used_bytes == used0);  // every slot given back
  }
}

}  // namespace
}  // namespace common::kube
