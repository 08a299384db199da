#!/usr/bin/env bash
# One-command set-up for brickfs on Debian 12.
#
#   packaging/bootstrap.sh demo [--keep]
#                                 install what is missing, build, run the demo
#                                 (--keep: keep its directory, see demo.sh)
#   packaging/bootstrap.sh test   install what is missing, build, run all tests
#   packaging/bootstrap.sh build  install what is missing, build only
#
# Environment: BUILD_DIR (default ./build), BRICKFS_DEMO_DIR (default a temp dir).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$here/build}
what=${1:-test}

debs=(build-essential cmake ninja-build pkg-config dpkg-dev man-db groff-base
      libfuse3-dev fuse3 libtiff-dev libtiff-tools libzstd-dev libboost-filesystem-dev
      libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev
      libgtest-dev python3-numpy python3-tifffile python3-pil python3-zstandard python3-jsonschema
      rsync nodejs npm nginx-light openssl libblosc-dev zlib1g-dev python3-zarr python3-numcodecs)

install_missing() {
  local missing=()
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm may come from nodejs' own packaging rather than Debian's npm package.
  if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null; then
    missing=("${missing[@]/npm}")
  fi
  if [[ " ${missing[*]} " == *" nodejs "* ]] && command -v node >/dev/null; then
    missing=("${missing[@]/nodejs}")
  fi
  local todo=()
  for p in "${missing[@]}"; do [[ -n "$p" ]] && todo+=("$p"); done
  if ((${#todo[@]})); then
    echo "bootstrap: installing ${todo[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${todo[@]}" >/dev/null
  fi
}

build() {
  cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBRICKFS_WERROR=${BRICKFS_WERROR:-OFF} >/dev/null
  cmake --build "$build_dir" -j"$(nproc)"
}

node_modules() {
  # zarrita, the independent Zarr v3 reader of the interop tests.
  if [[ ! -d "$here/tests/interop/node_modules/zarrita" ]]; then
    (cd "$here/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

install_missing
case "$what" in
  build) build ;;
  demo) build; exec "$here/packaging/demo.sh" "${@:2}" "$build_dir/brickfs" ;;
  test)
    build
    node_modules
    ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout 900
    # The unit tests again under AddressSanitizer + UBSan, in their own build
    # tree: only the unit test targets, at -O1 with line tables, to keep CI
    # time modest. Any UBSan report fails the test (halt_on_error).
    unit_targets=()
    for d in "$here"/tests/unit/*/; do
      if compgen -G "${d}*_test.cc" >/dev/null; then unit_targets+=("$(basename "$d")_test"); fi
    done
    cmake -S "$here" -B "$build_dir-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
          -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DBRICKFS_SANITIZE=ON \
          -DBRICKFS_WERROR=${BRICKFS_WERROR:-OFF} >/dev/null
    cmake --build "$build_dir-asan" -j"$(nproc)" --target "${unit_targets[@]}"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ctest --test-dir "$build_dir-asan" -L unit --output-on-failure -j2 --timeout 900
    ;;
  *) echo "usage: $0 demo [--keep]|test|build" >&2; exit 2 ;;
esac
