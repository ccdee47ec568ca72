"""Pick the compiled core for this CPU.

The extension is built once per x86-64 instruction-set level (``_core_baseline``,
``_core_avx2`` = x86-64-v3, ``_core_avx512`` = x86-64-v4; see CMakeLists.txt). Each is a
complete module, so importing the best one the CPU supports is the whole dispatch. Set
``FASTKKT_ARCH=baseline|avx2|avx512`` to force a lower level (for testing or comparison).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

LEVELS = ("avx512", "avx2", "baseline")


def load(requested: str | None = None) -> ModuleType:
    """Import the core module for `requested` (default: $FASTKKT_ARCH, else the CPU's best)."""
    built = []
    for level in reversed(LEVELS):  # baseline first; a development build may hold one level only
        try:
            built.append(importlib.import_module(f"fastkkt._core_{level}"))
        except ImportError:
            continue
        break
    if not built:
        raise ImportError("fastkkt: no compiled core found (build with `pip install .`)")
    baseline = built[0]
    cpu = baseline.cpu_level()
    want = (requested or os.environ.get("FASTKKT_ARCH", "")).strip().lower() or cpu
    if want not in LEVELS:
        raise ImportError(f"FASTKKT_ARCH={want!r}: expected one of {', '.join(LEVELS)}")
    if LEVELS.index(want) < LEVELS.index(cpu):
        raise ImportError(f"FASTKKT_ARCH={want!r}: this CPU supports at most {cpu!r}")
    for level in LEVELS[LEVELS.index(want) :]:
        try:
            return importlib.import_module(f"fastkkt._core_{level}")
        except ImportError:  # that variant is not built on this architecture
            continue
    return baseline


core = load()
