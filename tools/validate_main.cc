// meshstor-validate: checks MeshStorVolume and MeshStorNodeDevice YAML/JSON files offline with the
// same codecs the binaries use. Prints one line per object; exits 1 if any object is invalid.
// Usage: meshstor-validate FILE...
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/api/v1alpha1/codec.h"
#include "common/config/yaml_json.h"

namespace {

using common::Status;
namespace v1 = common::api::v1alpha1;

Status ValidateDocument(const std::string& json, std::string* what) {
  if (json.find("\"kind\":\"MeshStorNodeDevice\"") != std::string::npos) {
    auto d = v1::DecodeMeshStorNodeDevice(json);
    if (!d.ok()) return d.status();
    *what = "MeshStorNodeDevice/" + d->metadata.name;
    return common::OkStatus();
  }
  if (json.find("\"kind\":\"MeshStorVolume\"") != std::string::npos) {
    auto v = v1::DecodeMeshStorVolume(json);
    if (!v.ok()) return v.status();
    *what = "MeshStorVolume/" + v->metadata.name;
    return common::OkStatus();
  }
  return common::InvalidArgumentError("kind: expected MeshStorVolume or MeshStorNodeDevice");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  int invalid = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i]);
    if (!in) {
      std::printf("error  %s: cannot read file\n", argv[i]);
      ++invalid;
      continue;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto docs = common::config::YamlToJsonDocuments(ss.str(), argv[i]);
    if (!docs.ok()) {
      std::printf("error  %s: %s\n", argv[i], docs.status().message().c_str());
      ++invalid;
      continue;
    }
    for (const std::string& json : *docs) {
      std::string what;
      Status s = ValidateDocument(json, &what);
      if (s.ok()) {
        std::printf("ok     %s: %s\n", argv[i], what.c_str());
      } else {
        std::printf("error  %s: %s\n", argv[i], s.message().c_str());
        ++invalid;
      }
    }
  }
  return invalid == 0 ? 0 : 1;
}
