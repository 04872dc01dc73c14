#include "common/kube/kubeconfig.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "common/config/yaml_json.h"
#include "common/text/strings.h"

namespace common::kube {
namespace {

namespace fs = std::filesystem;

// Upper bound for the files a kubeconfig points at (certificates, keys, tokens).
constexpr size_t kMaxReferencedFileSize = 4 << 20;

// Reads a whole (small) file. NotFound/PermissionDenied/... from errno, naming the file.
Status ReadSmallFile(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) return ErrnoToStatus(errno, fmt::format("reading {}", path));
  out->clear();
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    out->append(buf, n);
    if (out->size() > kMaxReferencedFileSize) {
      std::fclose(f);
      return InvalidArgumentError("reading {}: larger than {} bytes", path, kMaxReferencedFileSize);
    }
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return ErrnoToStatus(err, fmt::format("reading {}", path));
  return OkStatus();
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 (RFC 4648 §4). Whitespace is ignored (line-wrapped data); padding is optional
// but, when present, must be correct and final.
std::optional<std::string> Base64Decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  size_t symbols = 0;
  size_t padding = 0;
  for (char c : in) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after padding
    const int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    ++symbols;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (symbols % 4 == 1) return std::nullopt;
  if (padding > 0 && (symbols + padding) % 4 != 0) return std::nullopt;
  if (padding > 2) return std::nullopt;
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool LooksLikePem(std::string_view data) { return data.find("-----BEGIN ") != std::string::npos; }

// Reads keys of one kubeconfig object, producing errors that name the file and the key path.
class Reader {
 public:
  Reader(std::string file, std::string dir) : file_(std::move(file)), dir_(std::move(dir)) {}

  const std::string& file() const { return file_; }

  Status Error(std::string_view key_path, std::string_view what) const {
    return InvalidArgumentError("kubeconfig {}: {}: {}", file_, key_path, what);
  }
  Status Error(std::string_view what) const {
    return InvalidArgumentError("kubeconfig {}: {}", file_, what);
  }

  // `*out` is left unchanged when the key is absent or null.
  Status String(const rapidjson::Value& obj, std::string_view path, const char* key,
                std::string* out) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return OkStatus();
    if (!it->value.IsString()) return Error(Join(path, key), "expected a string");
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return OkStatus();
  }

  Status Bool(const rapidjson::Value& obj, std::string_view path, const char* key,
              bool* out) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return OkStatus();
    if (!it->value.IsBool()) return Error(Join(path, key), "expected a boolean");
    *out = it->value.GetBool();
    return OkStatus();
  }

  static bool Has(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && !it->value.IsNull();
  }

  static std::string Join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

  // Finds the entry named `name` in the list `list_key` (contexts, clusters, users) and returns
  // its `inner_key` object with its path ("clusters[2].cluster") in *path.
  Result<const rapidjson::Value*> FindNamed(const rapidjson::Value& root, const char* list_key,
                                            const char* inner_key, const char* what,
                                            std::string_view name, std::string* path) const {
    auto list = root.FindMember(list_key);
    if (list != root.MemberEnd() && !list->value.IsNull()) {
      if (!list->value.IsArray()) return Error(list_key, "expected a list");
      for (rapidjson::SizeType i = 0; i < list->value.Size(); ++i) {
        const rapidjson::Value& entry = list->value[i];
        const std::string entry_path = fmt::format("{}[{}]", list_key, i);
        if (!entry.IsObject()) return Error(entry_path, "expected a mapping");
        std::string entry_name;
        RETURN_IF_ERROR(String(entry, entry_path, "name", &entry_name));
        if (entry_name != name) continue;
        *path = Join(entry_path, inner_key);
        auto inner = entry.FindMember(inner_key);
        // An empty entry ("user:" or "user: {}") is valid; what it lacks is reported by key.
        static const rapidjson::Value kEmpty(rapidjson::kObjectType);
        if (inner == entry.MemberEnd() || inner->value.IsNull()) return &kEmpty;
        if (!inner->value.IsObject()) return Error(*path, "expected a mapping");
        return &inner->value;
      }
    }
    return Error(fmt::format("{} \"{}\" not found", what, name));
  }

  // Reads inline base64 data (`data_key`) or a file (`path_key`, relative to the kubeconfig's
  // directory) into *out. Both at once is an error, as in client-go's validation.
  Status DataOrFile(const rapidjson::Value& obj, std::string_view path, const char* data_key,
                    const char* path_key, bool pem, std::string* out) const {
    std::string data;
    std::string file;
    RETURN_IF_ERROR(String(obj, path, data_key, &data));
    RETURN_IF_ERROR(String(obj, path, path_key, &file));
    if (!data.empty() && !file.empty()) {
      return Error(path, fmt::format("{} and {} are both set", data_key, path_key));
    }
    if (!data.empty()) {
      std::optional<std::string> decoded = Base64Decode(data);
      if (!decoded) return Error(Join(path, data_key), "invalid base64");
      if (pem && !LooksLikePem(*decoded)) return Error(Join(path, data_key), "not PEM data");
      *out = std::move(*decoded);
      return OkStatus();
    }
    if (!file.empty()) {
      const std::string resolved = ResolvePath(file);
      Status s = ReadSmallFile(resolved, out);
      if (!s.ok())
        return s.WithContext(fmt::format("kubeconfig {}: {}", file_, Join(path, path_key)));
      if (pem && !LooksLikePem(*out)) {
        return Error(Join(path, path_key), fmt::format("{} does not hold PEM data", resolved));
      }
    }
    return OkStatus();
  }

  std::string ResolvePath(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(dir_) / p).lexically_normal().string();
  }

 private:
  std::string file_;
  std::string dir_;
};

Status ReadCluster(const Reader& r, const rapidjson::Value& cluster, const std::string& path,
                   RestConfig* config) {
  RETURN_IF_ERROR(r.String(cluster, path, "server", &config->server));
  if (config->server.empty()) return r.Error(Reader::Join(path, "server"), "missing");
  if (Reader::Has(cluster, "proxy-url")) {
    return UnimplementedError("kubeconfig {}: {}: proxies are not supported", r.file(),
                              Reader::Join(path, "proxy-url"));
  }
  RETURN_IF_ERROR(r.DataOrFile(cluster, path, "certificate-authority-data", "certificate-authority",
                               /*pem=*/true, &config->ca_pem));
  RETURN_IF_ERROR(
      r.Bool(cluster, path, "insecure-skip-tls-verify", &config->insecure_skip_tls_verify));
  if (config->insecure_skip_tls_verify && !config->ca_pem.empty()) {
    return r.Error(path,
                   "insecure-skip-tls-verify cannot be combined with a certificate authority");
  }
  RETURN_IF_ERROR(r.String(cluster, path, "tls-server-name", &config->tls_server_name));
  return OkStatus();
}

Status ReadUser(const Reader& r, const rapidjson::Value& user, const std::string& path,
                std::string_view name, RestConfig* config) {
  struct Unsupported {
    const char* key;
    const char* what;
  };
  static constexpr Unsupported kUnsupported[] = {
      {"exec", "exec credential plugins are not supported"},
      {"auth-provider", "auth-provider plugins are not supported"},
      {"username", "basic authentication is not supported"},
      {"password", "basic authentication is not supported"},
      {"as", "impersonation is not supported"},
      {"as-uid", "impersonation is not supported"},
      {"as-groups", "impersonation is not supported"},
      {"as-user-extra", "impersonation is not supported"},
  };
  for (const Unsupported& u : kUnsupported) {
    if (Reader::Has(user, u.key)) {
      return UnimplementedError("kubeconfig {}: user \"{}\" ({}): {}", r.file(), name,
                                Reader::Join(path, u.key), u.what);
    }
  }
  RETURN_IF_ERROR(r.String(user, path, "token", &config->bearer_token));
  std::string token_file;
  RETURN_IF_ERROR(r.String(user, path, "tokenFile", &token_file));
  if (!token_file.empty()) {
    config->token_file = r.ResolvePath(token_file);
    // Like client-go, fail early when the file cannot be read.
    std::string token;
    Status s = ReadSmallFile(config->token_file, &token);
    if (!s.ok()) {
      return s.WithContext(
          fmt::format("kubeconfig {}: {}", r.file(), Reader::Join(path, "tokenFile")));
    }
  }
  RETURN_IF_ERROR(r.DataOrFile(user, path, "client-certificate-data", "client-certificate",
                               /*pem=*/true, &config->client_cert_pem));
  RETURN_IF_ERROR(r.DataOrFile(user, path, "client-key-data", "client-key", /*pem=*/true,
                               &config->client_key_pem));
  if (config->client_cert_pem.empty() != config->client_key_pem.empty()) {
    return r.Error(path, config->client_cert_pem.empty()
                             ? "client-key-data/client-key is set without a client certificate"
                             : "client-certificate-data/client-certificate is set without a "
                               "client key");
  }
  return OkStatus();
}

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): see the thread contract
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

}  // namespace

Result<RestConfig> LoadKubeconfig(const std::string& path, std::string_view context_override) {
  Result<std::string> json = config::YamlFileToJson(path);
  if (!json.ok()) return json.status().WithContext("loading kubeconfig");

  rapidjson::Document doc;
  doc.Parse(json->data(), json->size());
  if (doc.HasParseError()) return InternalError("kubeconfig {}: YAML converted to bad JSON", path);
  if (doc.IsNull()) doc.SetObject();  // empty file
  if (!doc.IsObject()) return InvalidArgumentError("kubeconfig {}: expected a mapping", path);

  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const Reader r(path, dir);

  std::string context_name(context_override);
  if (context_name.empty()) {
    RETURN_IF_ERROR(r.String(doc, "", "current-context", &context_name));
    if (context_name.empty()) return r.Error("current-context is not set and no context was given");
  }

  RestConfig config;
  config.source = fmt::format("kubeconfig {} (context {})", path, context_name);

  std::string context_path;
  ASSIGN_OR_RETURN(const rapidjson::Value* context,
                   r.FindNamed(doc, "contexts", "context", "context", context_name, &context_path));
  std::string cluster_name;
  std::string user_name;
  RETURN_IF_ERROR(r.String(*context, context_path, "cluster", &cluster_name));
  RETURN_IF_ERROR(r.String(*context, context_path, "user", &user_name));
  RETURN_IF_ERROR(r.String(*context, context_path, "namespace", &config.namespace_));
  if (cluster_name.empty()) return r.Error(Reader::Join(context_path, "cluster"), "missing");

  std::string cluster_path;
  ASSIGN_OR_RETURN(const rapidjson::Value* cluster,
                   r.FindNamed(doc, "clusters", "cluster", "cluster", cluster_name, &cluster_path));
  RETURN_IF_ERROR(ReadCluster(r, *cluster, cluster_path, &config));

  if (!user_name.empty()) {
    std::string user_path;
    ASSIGN_OR_RETURN(const rapidjson::Value* user,
                     r.FindNamed(doc, "users", "user", "user", user_name, &user_path));
    RETURN_IF_ERROR(ReadUser(r, *user, user_path, user_name, &config));
  }
  return config;
}

Result<RestConfig> InClusterConfig(std::string_view dir) {
  std::optional<std::string> host = GetEnv("KUBERNETES_SERVICE_HOST");
  std::optional<std::string> port = GetEnv("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    return NotFoundError(
        "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must be set");
  }
  RestConfig config;
  config.source = "in-cluster";
  const std::string h = host->find(':') != std::string::npos && host->front() != '['
                            ? fmt::format("[{}]", *host)
                            : *host;
  config.server = fmt::format("https://{}:{}", h, *port);

  const fs::path base(dir);
  config.token_file = (base / "token").string();
  std::string token;
  Status s = ReadSmallFile(config.token_file, &token);
  if (!s.ok()) return s.WithContext("in-cluster config: service-account token");
  config.bearer_token = std::string(text::TrimSpace(token));
  if (config.bearer_token.empty()) {
    return InvalidArgumentError("in-cluster config: {} is empty", config.token_file);
  }

  const std::string ca_file = (base / "ca.crt").string();
  s = ReadSmallFile(ca_file, &config.ca_pem);
  if (!s.ok()) return s.WithContext("in-cluster config: service-account CA");
  if (!LooksLikePem(config.ca_pem)) {
    return InvalidArgumentError("in-cluster config: {} does not hold PEM data", ca_file);
  }

  std::string ns;
  if (ReadSmallFile((base / "namespace").string(), &ns).ok()) {
    config.namespace_ = std::string(text::TrimSpace(ns));
  }
  return config;
}

Result<RestConfig> LoadRestConfig(std::string_view kubeconfig_flag, std::string_view context) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(std::string(kubeconfig_flag), context);
  if (std::optional<std::string> env = GetEnv("KUBECONFIG")) {
    // Several paths are separated by ':'; we use the first one that is not empty.
    std::string_view paths = *env;
    while (!paths.empty()) {
      const size_t colon = paths.find(':');
      std::string_view first = paths.substr(0, colon);
      if (!first.empty()) return LoadKubeconfig(std::string(first), context);
      if (colon == std::string_view::npos) break;
      paths.remove_prefix(colon + 1);
    }
  }
  if (GetEnv("KUBERNETES_SERVICE_HOST")) return InClusterConfig();
  if (std::optional<std::string> home = GetEnv("HOME")) {
    const std::string path = (fs::path(*home) / ".kube" / "config").string();
    std::error_code ec;
    if (fs::exists(path, ec)) return LoadKubeconfig(path, context);
  }
  return NotFoundError(
      "no Kubernetes configuration: no --kubeconfig, $KUBECONFIG unset, not in a pod "
      "($KUBERNETES_SERVICE_HOST unset) and no $HOME/.kube/config");
}

}  // namespace common::kube
