// RBAC of the API test server, checked with the manifests' own RBAC files: what each
// ServiceAccount may do is exactly what manifests/base/rbac-*.yaml grants.
#include "tools/apiserver/rbac.h"

#include <catch2/catch.hpp>

#include "tools/apiserver/test_apiserver.h"
#include "tools/apiserver/test_client.h"

namespace tools::apiserver {
namespace {

using testing::SourceDir;

const std::string kNs = "meshstor-system";

Authorizer ManifestsRbac() {
  Authorizer a;
  for (const char* f : {"rbac-operator.yaml", "rbac-agent.yaml"}) {
    REQUIRE(a.AddFile(SourceDir() + "/manifests/base/" + f, kNs).ok());
  }
  return a;
}

RequestAttributes Msvol(std::string verb, std::string sub = "") {
  return {std::move(verb), "csi.meshstor.io", "meshstorvolumes", std::move(sub), "", "pvc-1"};
}

TEST_CASE("RBAC: each ServiceAccount may do exactly what the manifests grant", "[unit][rbac]") {
  Authorizer a = ManifestsRbac();
  const UserInfo controller = ServiceAccountUser(kNs, "meshstor-controller");
  const UserInfo node = ServiceAccountUser(kNs, "meshstor-node");
  const UserInfo stranger = ServiceAccountUser("default", "meshstor-node");

  // The operator pod: volumes and their status, the shim's create/delete, the sidecars' PVs.
  CHECK(a.Allowed(controller, Msvol("update", "status")));
  CHECK(a.Allowed(controller, Msvol("create")));
  CHECK(a.Allowed(controller, Msvol("delete")));
  CHECK(a.Allowed(controller, {"create", "", "persistentvolumes", "", "", "pv-1"}));
  CHECK(a.Allowed(controller, {"patch", "", "persistentvolumeclaims", "status", "apps", "data"}));
  CHECK_FALSE(a.Allowed(controller, Msvol("deletecollection")));
  CHECK_FALSE(a.Allowed(controller, Msvol("patch")));
  CHECK_FALSE(a.Allowed(controller, {"get", "", "secrets", "", kNs, "x"}));
  // Its Role holds only in meshstor-system.
  CHECK(a.Allowed(controller, {"update", "coordination.k8s.io", "leases", "", kNs, "x"}));
  CHECK_FALSE(
      a.Allowed(controller, {"update", "coordination.k8s.io", "leases", "", "default", "x"}));
  CHECK(a.Allowed(controller, {"create", "events.k8s.io", "events", "", kNs, ""}));
  CHECK_FALSE(a.Allowed(controller, {"create", "events.k8s.io", "events", "", "default", ""}));

  // The node pod: its own fields of volumes, drives; never creates or deletes a volume.
  CHECK(a.Allowed(node, Msvol("watch")));
  CHECK(a.Allowed(node, Msvol("update", "status")));
  CHECK(a.Allowed(node, {"create", "csi.meshstor.io", "meshstornodedevices", "", "", "n-d"}));
  CHECK(a.Allowed(node, {"update", "csi.meshstor.io", "meshstornodedevices", "status", "", "x"}));
  CHECK_FALSE(a.Allowed(node, Msvol("create")));
  CHECK_FALSE(a.Allowed(node, Msvol("delete")));
  CHECK_FALSE(a.Allowed(node, {"list", "", "nodes", "", "", ""}));
  CHECK_FALSE(a.Allowed(node, {"create", "", "persistentvolumes", "", "", "pv-1"}));

  // Same name, other namespace: a different ServiceAccount with nothing.
  CHECK_FALSE(a.Allowed(stranger, Msvol("get")));
  CHECK(a.Allowed({"admin", {"system:masters"}}, Msvol("deletecollection")));
}

TEST_CASE("RBAC: subresources, resourceNames and wildcards match as in Kubernetes",
          "[unit][rbac]") {
  Authorizer a;
  REQUIRE(a.AddDocument(R"({"kind":"ClusterRole","metadata":{"name":"r"},"rules":[
      {"apiGroups":["*"],"resources":["pods/log"],"verbs":["get"]},
      {"apiGroups":[""],"resources":["configmaps"],"verbs":["get","update"],
       "resourceNames":["cfg"]},
      {"apiGroups":["apps"],"resources":["*"],"verbs":["list"]}]})",
                        "default", "inline")
              .ok());
  REQUIRE(a.AddDocument(R"({"kind":"ClusterRoleBinding","metadata":{"name":"b"},
      "roleRef":{"kind":"ClusterRole","name":"r"},
      "subjects":[{"kind":"Group","name":"readers"}]})",
                        "default", "inline")
              .ok());
  UserInfo u{"alice", {"readers"}};
  CHECK(a.Allowed(u, {"get", "", "pods", "log", "ns", "p"}));
  CHECK_FALSE(a.Allowed(u, {"get", "", "pods", "", "ns", "p"}));  // the subresource only
  CHECK(a.Allowed(u, {"update", "", "configmaps", "", "ns", "cfg"}));
  CHECK_FALSE(a.Allowed(u, {"update", "", "configmaps", "", "ns", "other"}));
  CHECK_FALSE(a.Allowed(u, {"list", "", "configmaps", "", "ns", ""}));  // names need a name
  CHECK(a.Allowed(u, {"list", "apps", "deployments", "", "", ""}));
  CHECK_FALSE(a.Allowed({"bob", {}}, {"list", "apps", "deployments", "", "", ""}));
  CHECK(Authorizer::Reason(u, {"list", "", "nodes", "", "", ""}) ==
        R"(User "alice" cannot list resource "nodes" in API group "" at the cluster scope)");
  CHECK_FALSE(a.AddDocument(R"({"kind":"ClusterRoleBinding","metadata":{"name":"x"},
      "roleRef":{"kind":"Role","name":"r"},"subjects":[]})",
                            "default", "inline")
                  .ok());  // a ClusterRoleBinding cannot bind a Role
}

TEST_CASE("RBAC in the test server: 401 without a known token, 403 outside the rules",
          "[unit][rbac]") {
  TestApiServer::Options o;
  o.crd_dir = SourceDir() + "/crds";
  o.rbac_files = {SourceDir() + "/manifests/base/rbac-agent.yaml"};
  o.rbac_namespace = kNs;
  o.tokens = {{"node-token", ServiceAccountUser(kNs, "meshstor-node")},
              {"admin-token", {"admin", {"system:masters"}}}};
  auto server = TestApiServer::Start(o);
  REQUIRE(server.ok());
  testing::TestClient anonymous((*server)->url());
  CHECK(anonymous.Get("/api/v1/nodes").status == 401);
  testing::TestClient node((*server)->url());
  node.SetBearerToken("node-token");
  CHECK(node.Get("/apis/csi.meshstor.io/v1alpha1/meshstorvolumes").status == 200);
  CHECK(node.Get("/version").status == 200);  // discovery needs no rule
  auto denied = node.Get("/api/v1/nodes");
  CHECK(denied.status == 403);
  CHECK(denied.Str("/reason") == "Forbidden");
  CHECK(denied.Str("/message") ==
        "nodes is forbidden: User \"system:serviceaccount:meshstor-system:meshstor-node\" "
        "cannot list resource \"nodes\" in API group \"\" at the cluster scope");
  testing::TestClient admin((*server)->url());
  admin.SetBearerToken("admin-token");
  CHECK(admin.Get("/api/v1/nodes").status == 200);
}

}  // namespace
}  // namespace tools::apiserver
