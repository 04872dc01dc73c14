#!/usr/bin/env python3
"""Static checks of the rendered manifests against what the project builds.

- `kubectl kustomize` renders manifests/ and every overlay;
- every flag a container passes exists in that binary's --help (our binaries from the build
  tree, the CSI sidecars from the Kubernetes binaries directory);
- every image reference is one that tools/images.sh builds (tools/images.sh --list);
- every container's command is a binary its image carries.
Exit 77 when no kubectl is found (MESHSTOR_K8S_BIN, see README).
"""

import argparse
import os
import re
import subprocess
import sys

import kube_cluster

try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is missing (tools/setup-deps.sh installs it)")

OURS = {  # command -> path in the build tree
    "meshstor-operator": "operator/meshstor-operator",
    "meshstor-agent": "agent/meshstor-agent",
    "meshstor-csi-shim": "csi-shim/meshstor-csi-shim",
}
# The binaries each of our images carries (tools/images.sh).
IMAGE_BINARIES = {
    "meshstor/operator": {"meshstor-operator", "meshstor-csi-shim"},
    "meshstor/agent": {"meshstor-agent", "meshstor-csi-shim"},
}
SIDECARS = ("csi-provisioner", "csi-resizer", "csi-node-driver-registrar", "livenessprobe")


def help_flags(argv):
    r = subprocess.run(argv + ["--help"], capture_output=True, text=True)
    text = r.stdout + r.stderr
    return set(re.findall(r"(?:^|\s)--?([a-zA-Z0-9][a-zA-Z0-9._-]*)", text))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    root = kube_cluster.repo_root()
    b = os.path.abspath(a.build_dir)
    k8s = kube_cluster.find_k8s_bin(b, ("kubectl",) + SIDECARS)
    if k8s is None:
        print("SKIP: no kubectl (set MESHSTOR_K8S_BIN to a directory with kubectl and the CSI "
              "sidecars)")
        return kube_cluster.SKIP
    kubectl = os.path.join(k8s, "kubectl")
    listed = subprocess.run([os.path.join(root, "tools", "images.sh"), "--list"],
                            capture_output=True, text=True, check=True).stdout.split()
    built = set(listed)
    errors = []
    trees = ["manifests"] + sorted(
        os.path.join("manifests", "overlays", d)
        for d in os.listdir(os.path.join(root, "manifests", "overlays")))
    helps = {}
    containers = 0
    for tree in trees:
        r = subprocess.run([kubectl, "kustomize", os.path.join(root, tree)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            errors.append("%s does not render: %s" % (tree, r.stderr.strip()))
            continue
        objects = [o for o in yaml.safe_load_all(r.stdout) if o]
        print("%s: %d objects" % (tree, len(objects)))
        for o in objects:
            spec = o.get("spec", {}).get("template", {}).get("spec")
            if not spec:
                continue
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                containers += 1
                where = "%s %s/%s container %s" % (tree, o["kind"], o["metadata"]["name"],
                                                   c["name"])
                image = c["image"]
                if image not in built:
                    errors.append("%s: image %s is not one tools/images.sh builds (%s)" % (
                        where, image, ", ".join(sorted(built))))
                repo = image.rsplit(":", 1)[0]
                if "command" in c:
                    binary = c["command"][0]
                    if binary not in IMAGE_BINARIES.get(repo, ()):
                        errors.append("%s: image %s does not carry %s" % (where, image, binary))
                    argv = [os.path.join(b, OURS[binary])] if binary in OURS else None
                else:
                    sidecar = repo.split("/")[-1]
                    argv = [os.path.join(k8s, sidecar)] if sidecar in SIDECARS else None
                if argv is None:
                    errors.append("%s: no binary to check the flags of" % where)
                    continue
                key = argv[0]
                if key not in helps:
                    helps[key] = help_flags(argv)
                for arg in c.get("args", []) + c.get("command", [])[1:]:
                    if not arg.startswith("-"):
                        continue
                    flag = arg.lstrip("-").split("=", 1)[0]
                    if flag not in helps[key]:
                        errors.append("%s: %s has no flag --%s (see %s --help)" % (
                            where, os.path.basename(key), flag, os.path.basename(key)))
    if errors:
        print("FAILED:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    print("%d containers: every image is built by tools/images.sh, every flag exists" %
          containers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
