#!/bin/bash
# Builds the libFuzzer targets with clang in a separate build directory and fuzzes
# each for a bounded time. Inputs that fail (crash, sanitizer report, violated
# contract, timeout, OOM) with a failure not seen before are copied to
# tests/fuzz/regressions/<target>/. Saved inputs are replayed first by every run;
# those of the src/format targets also by the unit test
# tests/unit/format/fuzz_regressions_test.cc (ctest -L unit).
#
#   bash tests/fuzz/run_fuzz.sh [TARGET...]
#
# Targets: tiff_fuzz shard_index_fuzz journal_fuzz json_fuzz volume_meta_fuzz
#          block_codec_fuzz store_open_fuzz (all by default; see tests/fuzz/CMakeLists.txt)
# Environment:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 60)
#   FUZZ_BUILD     build directory (default <repo>/build-fuzz)
#   FUZZ_WORK      work directory for corpora, logs and artifacts (default: a temp
#                  dir, deleted at the end when nothing failed, unless FUZZ_KEEP=1)
#   FUZZ_JOBS      build parallelism (default: number of CPUs)
#   FUZZ_FORK      libFuzzer -fork=N (default 1): keeps fuzzing after a failure, so
#                  one run finds more than one problem; 0 = stop at the first
#   FUZZ_MAX_SAVE  at most this many new inputs saved per target and run (default 5)
#   BRICKFS_BIN    brickfs binary used for zarr.json seeds (default build/brickfs)
# Exit status: 0 when nothing failed, 1 when a regression input still fails or a new
# failure was found, 2 on a build or setup failure.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR=$REPO/tests/fuzz
BUILD=${FUZZ_BUILD:-$REPO/build-fuzz}
SECS=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc)}
ALL_TARGETS="tiff_fuzz shard_index_fuzz journal_fuzz json_fuzz volume_meta_fuzz block_codec_fuzz store_open_fuzz"
TARGETS=${*:-$ALL_TARGETS}
PY=/usr/bin/python3

die() { echo "run_fuzz.sh: $*" >&2; exit 2; }

# ---- clang with libFuzzer (Debian 12: clang-14 + libclang-rt-14-dev) ----
have_libfuzzer() {
  command -v clang++ >/dev/null 2>&1 || return 1
  local d
  d=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
    > "$d/p.cc"
  clang++ -fsanitize=fuzzer,address,undefined "$d/p.cc" -o "$d/p" >/dev/null 2>&1
  local rc=$?
  rm -rf "$d"
  return $rc
}
if ! have_libfuzzer; then
  echo "run_fuzz.sh: installing clang and libFuzzer (clang, libclang-rt-14-dev)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y clang libclang-rt-14-dev >&2 || \
    $SUDO apt-get install -y clang libclang-rt-dev >&2 || die "cannot install clang"
  have_libfuzzer || die "clang++ -fsanitize=fuzzer does not link"
fi

# ---- build ----
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$FUZZ_DIR" -B "$BUILD" "${GEN[@]}" \
    -DBRICKFS_FUZZ=ON -DBRICKFS_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    || die "cmake configure failed"
fi
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$JOBS" --target $TARGETS || die "build failed"

# ---- work dir, seeds ----
TEMP_WORK=0
if [ -n "${FUZZ_WORK:-}" ]; then
  WORK=$FUZZ_WORK
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/brickfs-fuzz-XXXXXX)
  TEMP_WORK=1
fi
BIN=${BRICKFS_BIN:-$REPO/build/brickfs}
$PY "$FUZZ_DIR/make_seeds.py" "$WORK/seeds" --brickfs "$BIN" || die "seed generation failed"

# One line naming a failure, for de-duplication: the violated contract; or the UBSan
# location and kind; or the sanitizer error kind and the first brickfs frame; or the
# libFuzzer verdict (timeout, out-of-memory, deadly signal).
signature() {
  awk '
    /fuzz contract violated: / {
      s = $0; sub(/.*fuzz contract violated: /, "", s); sub(/: .*/, "", s)
      print "contract " s; done = 1; exit }
    /runtime error: / {
      s = $0; sub(/^.*\/(src|tests|include)\//, "", s); gsub(/[0-9]+/, "N", s)
      print "ubsan " s; done = 1; exit }
    /ERROR: AddressSanitizer: / && kind == "" {
      kind = $0; sub(/.*AddressSanitizer: /, "", kind); sub(/ .*/, "", kind); next }
    /ERROR: LeakSanitizer/ && kind == "" { kind = "leak"; next }
    /ERROR: libFuzzer: / && kind == "" {
      kind = $0; sub(/.*libFuzzer: /, "", kind); sub(/ .*/, "", kind); next }
    kind != "" && / in brickfs::/ {
      f = $0; sub(/.* in brickfs::/, "", f); sub(/\(.*/, "", f)
      print "sanitizer " kind " in " f; done = 1; exit }
    END { if (!done) print "other " (kind == "" ? "failure" : kind) }'
}

found=0
for t in $TARGETS; do
  exe=$BUILD/$t
  [ -x "$exe" ] || die "$exe was not built"
  corpus=$WORK/corpus/$t
  art=$WORK/artifacts/$t
  reg=$FUZZ_DIR/regressions/$t
  known=$WORK/$t.signatures
  mkdir -p "$corpus" "$art" "$WORK/seeds/$t"
  : > "$known"
  opts=(-rss_limit_mb=2048 -timeout=10)
  [ "$t" = tiff_fuzz ] && opts+=(-max_len=65536)

  # 1. replay the saved inputs: each must run clean now
  regs=()
  if [ -d "$reg" ]; then
    for f in "$reg"/*; do
      case $f in *.txt|*.md) continue ;; esac
      [ -f "$f" ] && regs+=("$f")
    done
  fi
  if [ ${#regs[@]} -gt 0 ]; then
    echo "== $t: replaying ${#regs[@]} saved inputs"
    for f in "${regs[@]}"; do
      if ! "$exe" "${opts[@]}" "$f" > "$WORK/$t.replay.log" 2>&1; then
        sig=$(signature < "$WORK/$t.replay.log")
        echo "$sig" >> "$known"
        echo "!! $t: saved input $(basename "$f") still fails: $sig"
        found=1
      fi
    done
  fi

  # 2. fuzz for SECS seconds from the seeds and the saved inputs
  echo "== $t: fuzzing ${SECS}s"
  seeds=("$WORK/seeds/$t")
  [ -d "$reg" ] && seeds+=("$reg")
  fuzz_opts=(-print_final_stats=1 -artifact_prefix="$art/")
  if [ "${FUZZ_FORK:-1}" != 0 ]; then
    fuzz_opts+=(-fork="${FUZZ_FORK:-1}" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  fi
  "$exe" "${opts[@]}" "${fuzz_opts[@]}" -max_total_time="$SECS" "$corpus" "${seeds[@]}" \
    > "$WORK/$t.log" 2>&1
  rc=$?
  grep -E "^#[0-9]+: cov:|^#[0-9]+\s+DONE" "$WORK/$t.log" | tail -1 | sed 's/^/   /'
  shopt -s nullglob
  arts=("$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*)
  shopt -u nullglob
  saved=0
  for a in "${arts[@]}"; do
    found=1
    sig=$("$exe" "${opts[@]}" "$a" 2>&1 | signature)
    grep -qxF -- "$sig" "$known" && continue  # same failure as a saved/earlier input
    echo "$sig" >> "$known"
    if [ $saved -lt "${FUZZ_MAX_SAVE:-5}" ]; then
      mkdir -p "$reg"
      cp "$a" "$reg/"
      saved=$((saved + 1))
      echo "!! $t: NEW failure, saved tests/fuzz/regressions/$t/$(basename "$a"): $sig"
    fi
  done
  if [ ${#arts[@]} -gt 0 ] || { [ $rc -ne 0 ] && [ ${#arts[@]} -eq 0 ]; }; then
    echo "   $t: exit $rc, ${#arts[@]} failing inputs, $saved new saved; log $WORK/$t.log"
    [ $rc -ne 0 ] && found=1
  fi
done

if [ $found -eq 0 ]; then
  echo "run_fuzz.sh: nothing failed"
  [ "$TEMP_WORK" = 1 ] && [ "${FUZZ_KEEP:-0}" != 1 ] && rm -rf "$WORK"
else
  echo "run_fuzz.sh: FAILURES (see above; logs, corpora and inputs kept in $WORK)"
fi
exit $found
