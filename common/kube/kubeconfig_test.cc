#include "common/kube/kubeconfig.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "common/status/status.h"

namespace common::kube {
namespace {

// PEM-looking test data; kubeconfig loading checks the PEM markers only (the transport parses).
constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n";
constexpr char kCertPem[] = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
constexpr char kKeyPem[] = "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "meshstor-kubeconfig-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::filesystem::path p = std::filesystem::path(path_) / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets (or unsets, for nullopt) an environment variable for the lifetime of this object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A kubeconfig with two contexts: "prod" (token, CA data) and "dev" (client certificate files,
// CA file, namespace).
std::string TwoContextKubeconfig() {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "current-context: prod\n"
         "clusters:\n"
         "- name: prod-cluster\n"
         "  cluster:\n"
         "    server: https://10.0.0.1:6443\n"
         "    certificate-authority-data: " +
         Base64(kCaPem) +
         "\n"
         "    tls-server-name: kubernetes\n"
         "- name: dev-cluster\n"
         "  cluster:\n"
         "    server: https://[fd00::1]:6443\n"
         "    certificate-authority: pki/ca.crt\n"
         "users:\n"
         "- name: prod-admin\n"
         "  user:\n"
         "    token: abc.def\n"
         "- name: dev-user\n"
         "  user:\n"
         "    client-certificate: pki/client.crt\n"
         "    client-key: pki/client.key\n"
         "contexts:\n"
         "- name: prod\n"
         "  context:\n"
         "    cluster: prod-cluster\n"
         "    user: prod-admin\n"
         "- name: dev\n"
         "  context:\n"
         "    cluster: dev-cluster\n"
         "    user: dev-user\n"
         "    namespace: meshstor-system\n";
}

TEST_CASE("LoadKubeconfig reads the current context with a token and inline CA", "[unit][kube]") {
  TempDir dir;
  const std::string path = dir.Write("config", TwoContextKubeconfig());
  Result<RestConfig> c = LoadKubeconfig(path);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->server == "https://10.0.0.1:6443");
  CHECK(c->ca_pem == kCaPem);
  CHECK(c->tls_server_name == "kubernetes");
  CHECK_FALSE(c->insecure_skip_tls_verify);
  CHECK(c->bearer_token == "abc.def");
  CHECK(c->token_file.empty());
  CHECK(c->client_cert_pem.empty());
  CHECK(c->namespace_.empty());
  CHECK(c->source == "kubeconfig " + path + " (context prod)");
}

TEST_CASE("LoadKubeconfig resolves files relative to the kubeconfig's directory", "[unit][kube]") {
  TempDir dir;
  dir.Write("kube/pki/ca.crt", kCaPem);
  dir.Write("kube/pki/client.crt", kCertPem);
  dir.Write("kube/pki/client.key", kKeyPem);
  const std::string path = dir.Write("kube/config", TwoContextKubeconfig());
  Result<RestConfig> c = LoadKubeconfig(path, "dev");
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->server == "https://[fd00::1]:6443");
  CHECK(c->ca_pem == kCaPem);
  CHECK(c->client_cert_pem == kCertPem);
  CHECK(c->client_key_pem == kKeyPem);
  CHECK(c->bearer_token.empty());
  CHECK(c->namespace_ == "meshstor-system");
}

TEST_CASE("LoadKubeconfig reads inline client certificates and token files", "[unit][kube]") {
  TempDir dir;
  dir.Write("tokens/sa", "file-token\n");
  const std::string path = dir.Write("config",
                                     "current-context: c\n"
                                     "contexts:\n"
                                     "- name: c\n"
                                     "  context: {cluster: k, user: u}\n"
                                     "clusters:\n"
                                     "- name: k\n"
                                     "  cluster:\n"
                                     "    server: https://k:443\n"
                                     "    insecure-skip-tls-verify: true\n"
                                     "users:\n"
                                     "- name: u\n"
                                     "  user:\n"
                                     "    tokenFile: tokens/sa\n"
                                     "    client-certificate-data: " +
                                         Base64(kCertPem) +
                                         "\n"
                                         "    client-key-data: " +
                                         Base64(kKeyPem) + "\n");
  Result<RestConfig> c = LoadKubeconfig(path);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->insecure_skip_tls_verify);
  CHECK(c->ca_pem.empty());
  CHECK(c->token_file == dir.path() + "/tokens/sa");
  CHECK(c->client_cert_pem == kCertPem);
  CHECK(c->client_key_pem == kKeyPem);
}

TEST_CASE("LoadKubeconfig errors name the file and the key", "[unit][kube]") {
  TempDir dir;
  const std::string cluster = "clusters:\n- name: k\n  cluster:\n    server: https://k\n";
  const std::string context = "contexts:\n- name: c\n  context: {cluster: k, user: u}\n";
  struct Case {
    const char* name;
    std::string yaml;
    std::string context_override;
    StatusCode code;
    std::string text;
  };
  const Case cases[] = {
      {"no current context", cluster, "", StatusCode::kInvalidArgument,
       "current-context is not set"},
      {"unknown context", "current-context: foo\n" + cluster + context, "",
       StatusCode::kInvalidArgument, "context \"foo\" not found"},
      {"unknown override", "current-context: c\n" + cluster + context, "bar",
       StatusCode::kInvalidArgument, "context \"bar\" not found"},
      {"unknown cluster",
       "current-context: c\ncontexts:\n- name: c\n  context: {cluster: nope}\n" + cluster, "",
       StatusCode::kInvalidArgument, "cluster \"nope\" not found"},
      {"context without cluster", "current-context: c\ncontexts:\n- name: c\n  context: {}\n", "",
       StatusCode::kInvalidArgument, "contexts[0].context.cluster: missing"},
      {"unknown user", "current-context: c\n" + cluster + context, "", StatusCode::kInvalidArgument,
       "user \"u\" not found"},
      {"no server",
       "current-context: c\n" + context + "clusters:\n- name: k\n  cluster: {}\n" +
           "users:\n- name: u\n  user: {}\n",
       "", StatusCode::kInvalidArgument, "clusters[0].cluster.server: missing"},
      {"bad base64",
       "current-context: c\n" + cluster + context +
           "users:\n- name: u\n  user:\n    client-certificate-data: " + Base64(kCertPem) +
           "\n    client-key-data: '%%%'\n",
       "", StatusCode::kInvalidArgument, "users[0].user.client-key-data: invalid base64"},
      {"not PEM",
       "current-context: c\n" + context +
           "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
           "    certificate-authority-data: " +
           Base64("hello") + "\nusers:\n- name: u\n  user: {}\n",
       "", StatusCode::kInvalidArgument, "clusters[0].cluster.certificate-authority-data: not PEM"},
      {"missing CA file",
       "current-context: c\n" + context +
           "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
           "    certificate-authority: missing/ca.crt\nusers:\n- name: u\n  user: {}\n",
       "", StatusCode::kNotFound, "clusters[0].cluster.certificate-authority"},
      {"wrong type",
       "current-context: c\n" + context +
           "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
           "    insecure-skip-tls-verify: 'yes'\nusers:\n- name: u\n  user: {}\n",
       "", StatusCode::kInvalidArgument,
       "clusters[0].cluster.insecure-skip-tls-verify: expected a boolean"},
      {"insecure with CA",
       "current-context: c\n" + context +
           "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
           "    insecure-skip-tls-verify: true\n    certificate-authority-data: " +
           Base64(kCaPem) + "\nusers:\n- name: u\n  user: {}\n",
       "", StatusCode::kInvalidArgument, "clusters[0].cluster: insecure-skip-tls-verify"},
      {"data and file",
       "current-context: c\n" + cluster + context +
           "users:\n- name: u\n  user:\n    client-certificate-data: " + Base64(kCertPem) +
           "\n    client-certificate: c.crt\n    client-key-data: " + Base64(kKeyPem) + "\n",
       "", StatusCode::kInvalidArgument,
       "users[0].user: client-certificate-data and client-certificate are both set"},
      {"certificate without key",
       "current-context: c\n" + cluster + context +
           "users:\n- name: u\n  user:\n    client-certificate-data: " + Base64(kCertPem) + "\n",
       "", StatusCode::kInvalidArgument, "users[0].user: client-certificate"},
      {"exec plugin",
       "current-context: c\n" + cluster + context +
           "users:\n- name: x\n  user: {}\n- name: u\n  user:\n    exec:\n"
           "      command: aws\n",
       "", StatusCode::kUnimplemented, "user \"u\" (users[1].user.exec)"},
      {"auth provider",
       "current-context: c\n" + cluster + context +
           "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
       "", StatusCode::kUnimplemented, "user \"u\" (users[0].user.auth-provider)"},
      {"proxy",
       "current-context: c\n" + context +
           "clusters:\n- name: k\n  cluster:\n    server: https://k\n"
           "    proxy-url: http://proxy:3128\nusers:\n- name: u\n  user: {}\n",
       "", StatusCode::kUnimplemented, "clusters[0].cluster.proxy-url"},
      {"missing token file",
       "current-context: c\n" + cluster + context +
           "users:\n- name: u\n  user:\n    tokenFile: /nonexistent/token\n",
       "", StatusCode::kNotFound, "users[0].user.tokenFile"},
      {"list that is not a list", "current-context: c\ncontexts: {}\n", "",
       StatusCode::kInvalidArgument, "contexts: expected a list"},
      {"not a mapping", "- a\n- b\n", "", StatusCode::kInvalidArgument, "expected a mapping"},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const std::string path = dir.Write("config", c.yaml);
      Result<RestConfig> r = LoadKubeconfig(path, c.context_override);
      REQUIRE_FALSE(r.ok());
      INFO(r.status().ToString());
      CHECK(r.status().code() == c.code);
      CHECK_THAT(r.status().message(), Catch::Contains(c.text));
      CHECK_THAT(r.status().message(), Catch::Contains(path));
    }
  }
}

TEST_CASE("LoadKubeconfig reports a missing file as NotFound", "[unit][kube]") {
  Result<RestConfig> r = LoadKubeconfig("/nonexistent/meshstor/kubeconfig");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK_THAT(r.status().message(), Catch::Contains("/nonexistent/meshstor/kubeconfig"));
}

TEST_CASE("InClusterConfig reads the service-account files and the environment", "[unit][kube]") {
  TempDir dir;
  dir.Write("token", "sa-token\n");
  dir.Write("ca.crt", kCaPem);
  dir.Write("namespace", "meshstor-system");

  SECTION("IPv4") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    Result<RestConfig> c = InClusterConfig(dir.path());
    INFO(c.status().ToString());
    REQUIRE(c.ok());
    CHECK(c->server == "https://10.96.0.1:443");
    CHECK(c->token_file == dir.path() + "/token");
    CHECK(c->bearer_token == "sa-token");
    CHECK(c->ca_pem == kCaPem);
    CHECK(c->namespace_ == "meshstor-system");
    CHECK(c->source == "in-cluster");
  }
  SECTION("IPv6 hosts are bracketed") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
    Result<RestConfig> c = InClusterConfig(dir.path());
    REQUIRE(c.ok());
    CHECK(c->server == "https://[fd00:10:96::1]:6443");
  }
  SECTION("outside a pod") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    Result<RestConfig> c = InClusterConfig(dir.path());
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kNotFound);
    CHECK_THAT(c.status().message(), Catch::Contains("KUBERNETES_SERVICE_HOST"));
  }
  SECTION("missing token") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    std::filesystem::remove(dir.path() + "/token");
    Result<RestConfig> c = InClusterConfig(dir.path());
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kNotFound);
    CHECK_THAT(c.status().message(), Catch::Contains(dir.path() + "/token"));
  }
  SECTION("missing CA") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    std::filesystem::remove(dir.path() + "/ca.crt");
    Result<RestConfig> c = InClusterConfig(dir.path());
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(c.status().message(), Catch::Contains(dir.path() + "/ca.crt"));
  }
}

TEST_CASE("LoadRestConfig prefers the flag, then $KUBECONFIG, then in-cluster, then ~/.kube",
          "[unit][kube]") {
  TempDir dir;
  const std::string flag_path = dir.Write("flag/config", TwoContextKubeconfig());
  const std::string env_path = dir.Write("env/config", TwoContextKubeconfig());
  const std::string home_path = dir.Write("home/.kube/config", TwoContextKubeconfig());
  ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
  ScopedEnv home("HOME", dir.path() + "/home");

  SECTION("flag") {
    ScopedEnv kubeconfig("KUBECONFIG", env_path);
    Result<RestConfig> c = LoadRestConfig(flag_path);
    REQUIRE(c.ok());
    CHECK_THAT(c->source, Catch::Contains(flag_path));
  }
  SECTION("$KUBECONFIG, first path") {
    ScopedEnv kubeconfig("KUBECONFIG", ":" + env_path + ":" + flag_path);
    Result<RestConfig> c = LoadRestConfig("", "prod");
    REQUIRE(c.ok());
    CHECK_THAT(c->source, Catch::Contains(env_path));
  }
  SECTION("~/.kube/config") {
    ScopedEnv kubeconfig("KUBECONFIG", std::nullopt);
    Result<RestConfig> c = LoadRestConfig("");
    REQUIRE(c.ok());
    CHECK_THAT(c->source, Catch::Contains(home_path));
  }
  SECTION("in-cluster before ~/.kube/config") {
    ScopedEnv kubeconfig("KUBECONFIG", std::nullopt);
    ScopedEnv in_pod("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    // The default service-account directory does not exist here: the in-cluster error shows
    // that in-cluster was chosen.
    Result<RestConfig> c = LoadRestConfig("");
    if (c.ok()) {
      CHECK(c->source == "in-cluster");
    } else {
      CHECK_THAT(c.status().message(), Catch::Contains("in-cluster"));
    }
  }
  SECTION("nothing") {
    ScopedEnv kubeconfig("KUBECONFIG", std::nullopt);
    ScopedEnv no_home("HOME", dir.path() + "/nowhere");
    Result<RestConfig> c = LoadRestConfig("");
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace common::kube
