#!/usr/bin/env bash
# Build fastkkt with AddressSanitizer + UndefinedBehaviorSanitizer into a separate virtual
# environment and run the test suite under it.
#
#   bash scripts/sanitize.sh                      # the kernel tests (.ci/kernel-tests.txt)
#   bash scripts/sanitize.sh tests/test_fuzz.py   # arguments are passed to pytest
#
# Environment:
#   BASE_VENV   venv that provides numpy, scipy, torch, pytest, hypothesis and the build
#               requirements (default: .venv); the sanitizer venv sees its packages
#               through a .pth file but gets its own, sanitized, fastkkt
#   ASAN_VENV   where the sanitizer venv goes (default: build/asan-venv)
#   FASTKKT_ARCH  instruction-set variant to test (default: the CPU's best)
#
# CPython leaks by design, so leak detection is off; any ASan report or UBSan finding
# aborts the process (halt_on_error), which pytest shows as a crashed run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE_VENV=${BASE_VENV:-$ROOT/.venv}
ASAN_VENV=${ASAN_VENV:-$ROOT/build/asan-venv}
BASE_PY="$BASE_VENV/bin/python"
start=$(date +%s)

# 1. a venv that sees the base venv's packages (not its editable fastkkt) ---------------
if [ ! -x "$ASAN_VENV/bin/python" ]; then
  "$BASE_PY" -m venv --without-pip "$ASAN_VENV"
fi
PY="$ASAN_VENV/bin/python"
base_site=$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
asan_site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# A bare path line: appended to sys.path after the venv's own site-packages, and the base
# venv's own .pth files (its editable fastkkt hook) are not processed.
echo "$base_site" >"$asan_site/zz_base_venv.pth"
# cmeel-eigen's CMake config is found through its distribution metadata, which works through
# the bare path; pip itself comes from the base venv.

# 2. build and install the sanitized extension ------------------------------------------
# Only the variant under test is compiled: the sanitized build of one variant is several
# minutes on two cores, and the tests import one. It is FASTKKT_ARCH, else the CPU's best
# level as the base venv's fastkkt reports it (else every variant).
variant=${FASTKKT_ARCH:-$(cd / && "$BASE_PY" -c 'import fastkkt; print(fastkkt.cpu_variant)' 2>/dev/null || true)}
echo "== building fastkkt ${variant:-(every variant)} with -fsanitize=address,undefined (build/asan)"
# -O1 -g1: ASan's recommended optimization level, and line tables (enough for its reports'
# file:line) instead of full debug information, which made the build several times slower.
"$PY" -m pip install --no-deps --no-build-isolation --force-reinstall --quiet \
  -Cbuild-dir=build/asan \
  -Ccmake.define.FASTKKT_SANITIZE=ON \
  -Ccmake.define.FASTKKT_ONLY="$variant" \
  -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.CMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  "$ROOT"
built=$(date +%s)
echo "== build took $((built - start)) s"

# 3. run the tests with the ASan runtime preloaded ----------------------------------------
LIBASAN=$(gcc -print-file-name=libasan.so)
if [ ! -e "$LIBASAN" ]; then
  echo "libasan.so not found (gcc -print-file-name=libasan.so)" >&2
  exit 2
fi
# libstdc++ is preloaded too: otherwise ASan's __cxa_throw interceptor finds no real
# __cxa_throw when torch throws its first C++ exception, and aborts ("CHECK failed:
# asan_interceptors.cpp ... real___cxa_throw").
PRELOAD="$LIBASAN $(gcc -print-file-name=libstdc++.so.6)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export CI=${CI:-1}  # the deterministic hypothesis profile

# Run from outside the repository so that `import fastkkt` finds the sanitized install and
# not python/fastkkt.
cd "$ASAN_VENV"
LD_PRELOAD="$PRELOAD" "$PY" -c 'import fastkkt, os; print("== fastkkt from", os.path.dirname(fastkkt.__file__), "variant", fastkkt.cpu_variant)'
if [ $# -eq 0 ]; then
  # The test files that exercise the kernels' arithmetic (.ci/kernel-tests.txt), less
  # torch.compile (minutes under ASan) and the wall-time speed-up of two threads, which ASan
  # itself distorts.
  mapfile -t kernel_tests < <(grep -v '^#' "$ROOT/.ci/kernel-tests.txt" | sed "s|^|$ROOT/|")
  set -- "${kernel_tests[@]}" -k "not compile and not two_threads_take"
fi
rc=0
LD_PRELOAD="$PRELOAD" "$PY" -m pytest -p no:cacheprovider -q --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "$@" || rc=$?
end=$(date +%s)
echo "== tests took $((end - built)) s (exit status $rc); total $((end - start)) s"
exit $rc
