#!/usr/bin/env bash
# The one command that installs what is missing, builds everything and runs every test.
# CI (.ci/run) calls exactly this. Usage: tools/test.sh [--no-sanitize] [ctest args...]
#   default: ASan+UBSan build in build/asan, all tests (ctest prints how many ran); the container
#   images get release binaries from build/image-bins
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=ON
build_dir=build/asan
if [[ "${1:-}" == "--no-sanitize" ]]; then
  sanitize=OFF
  build_dir=build/release
  shift
fi

tools/setup-deps.sh
tools/check-format.sh
tools/check-includes.sh

# ccache (from setup-deps) makes a rebuild in another clone of the same sources cheap: paths are
# taken relative to the clone, and the build directory does not enter the hash.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
image_args=()
if [[ "$sanitize" == ON ]]; then
  # The container images (ctest `images`, lab_k8s) carry release binaries, as users run them:
  # a second, release tree with only the four programs that go into the images.
  cmake -S . -B build/image-bins -G Ninja -DMESHSTOR_SANITIZE=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
  cmake --build build/image-bins -j"$(nproc)" --target meshstor-operator meshstor-agent \
    meshstor-csi-shim meshstor-sys
  image_args=(-DMESHSTOR_IMAGE_BUILD_DIR="$PWD/build/image-bins")
fi
cmake -S . -B "$build_dir" -G Ninja -DMESHSTOR_SANITIZE="$sanitize" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${launcher[@]}" "${image_args[@]}"
cmake --build "$build_dir" -j"$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" "$@"
