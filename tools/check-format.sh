#!/usr/bin/env bash
# Fails when a C++ file of the project differs from clang-format's output (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.h' '*.cc' | sort -u)
if (( ${#files[@]} == 0 )); then exit 0; fi
if ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "check-format: run tools/format.sh" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
