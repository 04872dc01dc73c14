// RestConfig: where a Kubernetes API server is and how to authenticate to it, loaded from a
// kubeconfig file or from the service-account files Kubernetes mounts into every pod. An
// HttpTransport (http_transport.h) is built from it.
//
// What is supported, after client-go's clientcmd and rest.InClusterConfig:
//   cluster: server, certificate-authority(-data), insecure-skip-tls-verify, tls-server-name.
//   user:    token, tokenFile, client-certificate(-data), client-key(-data).
// Unsupported settings that would change where or as whom we connect (exec and auth-provider
// plugins, username/password, impersonation, proxy-url) are an Unimplemented error rather than
// silently ignored. File paths in a kubeconfig are relative to the kubeconfig's directory.
//
// Every error names the file and the key: `kubeconfig /x: context "foo" not found`,
// `kubeconfig /x: users[0].user.client-key-data: invalid base64`.
//
// Thread contract: free functions; LoadRestConfig and InClusterConfig read the environment,
// which must not be modified concurrently.
#pragma once

#include <string>
#include <string_view>

#include "common/status/status.h"

namespace common::kube {

struct RestConfig {
  // "https://host:port" or "http://host:port", optionally with a path prefix; IPv6 hosts in
  // brackets. A server without a scheme gets https:// when any TLS setting is present, else
  // http:// (as client-go does).
  std::string server;
  // PEM certificates that verify the server. Empty: the system's trust store.
  std::string ca_pem;
  // Skips server verification. Not allowed together with ca_pem.
  bool insecure_skip_tls_verify = false;
  // Name used for SNI and to verify the server certificate instead of the server's host.
  std::string tls_server_name;
  // Static bearer token; the fallback when token_file is set but cannot be read.
  std::string bearer_token;
  // File holding the bearer token; re-read periodically (service-account tokens rotate) and
  // preferred over bearer_token.
  std::string token_file;
  // PEM client certificate (leaf first, then intermediates) and its private key; both or none.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Default namespace: the context's namespace, or the pod's namespace in-cluster. May be empty.
  std::string namespace_;
  // Where this config came from, for messages: "kubeconfig /x (context foo)" or "in-cluster".
  std::string source;
};

// Loads `path` and resolves the current context (or `context_override` when not empty) to its
// cluster and user. NotFound when the file cannot be read; InvalidArgument for a malformed file
// or a missing/bad key; Unimplemented for unsupported authentication (naming the user).
Result<RestConfig> LoadKubeconfig(const std::string& path, std::string_view context_override = {});

// The default directory of the service-account files (token, ca.crt, namespace).
inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// The config of a pod: server from $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT (an
// IPv6 host is bracketed), token_file `<dir>/token` (also read once into bearer_token), CA
// `<dir>/ca.crt`, namespace `<dir>/namespace` (optional). NotFound when the two variables are
// not set (not running in a pod); an error naming the file when token or ca.crt are unreadable.
Result<RestConfig> InClusterConfig(std::string_view dir = kServiceAccountDir);

// The config a MeshStor binary uses: `kubeconfig_flag` when not empty, else the first path of
// $KUBECONFIG, else the in-cluster config when $KUBERNETES_SERVICE_HOST is set, else
// $HOME/.kube/config. `context` overrides the current context of a kubeconfig. NotFound when
// none of these exists.
Result<RestConfig> LoadRestConfig(std::string_view kubeconfig_flag, std::string_view context = {});

}  // namespace common::kube
