#!/usr/bin/env bash
# Enforces the boundaries between modules:
# - common/ includes nothing from operator/, agent/, csi-shim/;
# - operator/, agent/ and csi-shim/ never include each other;
# - kernel headers (libnl, sys/mount.h) only under agent/sys/linux/.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() {  # check <dir> <forbidden-regex> <why>
  local hits
  hits=$(git ls-files --cached --others --exclude-standard -- "$1" | grep -E '\.(h|cc)$' |
         xargs -r grep -nE "$2" || true)
  if [[ -n "$hits" ]]; then
    echo "check-includes: $3" >&2
    echo "$hits" >&2
    fail=1
  fi
}
check common/ '#include "(operator|agent|csi-shim)/' "common/ must not depend on a binary"
check operator/ '#include "(agent|csi-shim)/' "operator/ must not include agent/ or csi-shim/"
check agent/ '#include "(operator|csi-shim)/' "agent/ must not include operator/ or csi-shim/"
check csi-shim/ '#include "(operator|agent)/' "csi-shim/ must not include operator/ or agent/"
for dir in common operator csi-shim tools e2e; do
  check "$dir/" '#include <(netlink/|sys/mount\.h|libmount|blkid/|libfdisk)' \
    "kernel library headers belong in agent/sys/linux/"
done
hits=$(git ls-files --cached --others --exclude-standard -- agent/ | grep -E '\.(h|cc)$' |
       grep -v '^agent/sys/linux/' |
       xargs -r grep -nE '#include <(netlink/|sys/mount\.h|libmount|blkid/|libfdisk)' || true)
if [[ -n "$hits" ]]; then
  echo "check-includes: kernel library headers belong in agent/sys/linux/" >&2
  echo "$hits" >&2
  fail=1
fi
exit $fail
