#!/usr/bin/env bash
# In-place development build: compiles one variant of the core (default: the CPU's best) into
# python/fastkkt/, so `PYTHONPATH=python python -m pytest` runs against this checkout without
# an install. Usage: bash scripts/dev_build.sh [baseline|avx2|avx512] (PYTHON selects the
# interpreter; it needs scikit-build-core's build requirements: pybind11, cmeel-eigen, cmake, ninja).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
variant=${1:-$(grep -q avx512f /proc/cpuinfo && echo avx512 || echo avx2)}
pybind11_dir=$("$PY" -c "import pybind11; print(pybind11.get_cmake_dir())")
cmake -S . -B "build/dev-$variant" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFASTKKT_ONLY="$variant" \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$pybind11_dir" ${CMAKE_ARGS:-} >/dev/null
cmake --build "build/dev-$variant" -j "${JOBS:-2}"

for f in "build/dev-$variant"/_core_"$variant".*.so; do cp -f "$f" python/fastkkt/; done
ls python/fastkkt/_core_*.so
