"""The thread setting of every call (`fastkkt.set_num_threads`, `get_num_threads`): the
NumPy API, fastkkt.torch and fastkkt.dask read it here.

A call asks the core for ``min(setting, cores)`` threads; the core lowers that further in a
forked child and under a lower OpenMP limit of the calling thread (cpp/include/fastkkt/
threads.hpp). Results never depend on it, bit for bit.
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np

__all__ = ["call_threads", "get_num_threads", "set_num_threads"]

_MAX_THREADS = 1 << 16


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _env_threads(name: str) -> int | None:
    """A thread count from environment variable `name` (OMP_NUM_THREADS may list one per
    nesting level: the first counts), or None when it is unset; a warning when it is no count."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    try:
        k = int(env.split(",")[0])
    except ValueError:
        k = 0
    if 1 <= k <= _MAX_THREADS:
        return k
    warnings.warn(
        f"{name}={env!r} is not a thread count (1 … {_MAX_THREADS}); ignored",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def _default_threads() -> int:
    for name in ("FASTKKT_NUM_THREADS", "OMP_NUM_THREADS"):
        k = _env_threads(name)
        if k is not None:
            return k
    return _cores()


_CORES = _cores()
_num_threads = _default_threads()
_threads_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # libgomp's threads do not survive fork(): the core runs forked children on one thread
    # (cpp/include/fastkkt/threads.hpp); the setting says so too.
    global _num_threads, _CORES
    _num_threads = 1
    _CORES = _cores()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def call_threads() -> int:
    """Threads to ask the core for: the setting, at most the cores (the core lowers it further
    in forked children and under a lower OpenMP limit of the calling thread)."""
    return min(_num_threads, _CORES)


def set_num_threads(k: int) -> None:
    """Use up to `k` threads (k ≥ 1) for later calls. Results do not depend on it, bit for bit.

    Calls never use more threads than the cores this process may run on, whatever `k` (more
    would only take turns on them). They also follow a lower OpenMP limit of the calling thread
    (``threadpoolctl.threadpool_limits``, ``torch.set_num_threads``, ``omp_set_num_threads``)
    and run on one thread in a process forked from this one (where the setting is reset to 1).
    """
    global _num_threads
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an int, got {type(k).__name__}")
    if not 1 <= k <= _MAX_THREADS:
        raise ValueError(f"set_num_threads expects 1 <= k <= {_MAX_THREADS}, got {k}")
    with _threads_lock:
        _num_threads = int(k)


def get_num_threads() -> int:
    """The thread setting: set_num_threads's, else $FASTKKT_NUM_THREADS, else
    $OMP_NUM_THREADS, else every core (1 in a forked child). Calls use at most the cores."""
    return _num_threads
