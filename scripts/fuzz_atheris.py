"""Fuzz the compiled binding layer (fastkkt._dispatch.core) directly with atheris.

The public API validates everything before the core sees it; this target bypasses it and
calls ``core.solve``, ``core.factorize`` and ``core.solve_factored`` with arrays decoded from
the fuzz bytes: any shapes (rank 0–5, sizes 0–5), dtypes (float64/32/16, int32/64, bool,
complex, big-endian), strides (transposed, reversed, stepped, broadcast stride 0,
misaligned), read-only or non-contiguous outputs, values (NaN, ±Inf, ±1e308, denormals, −0),
check_finite and nthreads. Inconsistent arguments must raise TypeError, ValueError or
MemoryError — never crash, hang or raise anything else.

    python scripts/fuzz_atheris.py --seconds 300          # atheris (libFuzzer) if installed
    python scripts/fuzz_atheris.py --seconds 60 --plain   # plain random-bytes loop
    python scripts/fuzz_atheris.py --replay crash-<hash>  # re-run one input
    python scripts/fuzz_atheris.py --garbage-records ...  # also feed solve_factored records
                                                          # that no factorize call wrote

Run under scripts/sanitize.sh's build to catch memory errors that do not crash:
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)" \\
      ASAN_OPTIONS=detect_leaks=0 build/asan-venv/bin/python scripts/fuzz_atheris.py ...

Without atheris the plain loop feeds random bytes to the same target and writes each input to
build/fuzz-last-input.bin first, so the input of a crash is left there for --replay.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time

import numpy as np

from fastkkt._dispatch import core

ALLOWED = (TypeError, ValueError, MemoryError)
DTYPES = [np.float64, np.float32, np.float16, np.int32, np.int64, np.bool_, np.complex128]
SPECIAL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, 1.0, -1.0, 1e-300]
GARBAGE_RECORDS = False


class Bytes:
    """A minimal decoder of fuzz bytes (zeros once exhausted), so that the plain loop and
    atheris decode the same input the same way."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self, lo: int, hi: int) -> int:
        return lo + self.byte() % (hi - lo + 1)

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def value(self) -> float:
        k = self.byte()
        if k < 40:
            return self.pick(SPECIAL)
        raw = bytes(self.byte() for _ in range(4))
        return float(struct.unpack("<f", raw)[0]) if k < 60 else (k - 150) / 16.0


def _shape(d: Bytes, base: tuple[int, ...], rank_hint: int) -> tuple[int, ...]:
    """Usually the consistent shape `base`; sometimes a mutated one."""
    if d.int(0, 7):
        return base
    kind = d.int(0, 3)
    if kind == 0:
        return tuple(d.int(0, 5) for _ in range(d.int(0, 5)))
    if kind == 1 and base:
        i = d.int(0, len(base) - 1)
        return base[:i] + (d.int(0, 5),) + base[i + 1 :]
    if kind == 2:
        return base[1:]
    return (d.int(1, 3), *base)


def _array(d: Bytes, shape: tuple[int, ...], dtype) -> np.ndarray:
    size = int(np.prod(shape)) if shape else 1
    if size > 4096:
        shape, size = (), 1
    vals = np.array([d.value() for _ in range(min(size, 64))] or [0.0])
    flat = np.resize(vals, size)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = flat.astype(dtype).reshape(shape)
    # layout
    lay = d.int(0, 9)
    if lay == 1 and a.ndim >= 2:
        a = np.swapaxes(np.swapaxes(a, -1, -2).copy(), -1, -2)  # Fortran-like
    elif lay == 2 and a.ndim >= 1:
        a = np.flip(np.flip(a, -1).copy(), -1)  # negative stride
    elif lay == 3 and a.ndim >= 1:
        big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
        big[..., ::2] = a
        a = big[..., ::2]  # stepped
    elif lay == 4 and a.ndim >= 1 and a.size:
        a = np.broadcast_to(a[..., :1], a.shape)  # stride 0 in the last axis
    elif lay == 5:
        a = a.astype(a.dtype.newbyteorder(">"))  # big-endian
    elif lay == 6 and a.size:
        buf = np.zeros(a.nbytes + a.itemsize, np.uint8)  # misaligned
        b = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        b[...] = a
        a = b
    elif lay == 7:
        a = a.copy()
        a.flags.writeable = False
    return a


def target(data: bytes) -> None:
    d = Bytes(data)
    fn = d.int(0, 2)
    n, m = d.int(0, 4), d.int(0, 3)
    batch = tuple(d.int(0, 3) for _ in range(d.int(0, 2)))
    dt = d.pick([np.float64, np.float32])

    def dtype():
        return dt if d.int(0, 5) else d.pick(DTYPES)

    Q = _array(d, _shape(d, (*batch, n, n), 2), dtype())
    A = _array(d, _shape(d, (*batch, m, n), 2), dtype())
    q = _array(d, _shape(d, (*batch, n), 1), dtype())
    c = _array(d, _shape(d, (*batch, m), 1), dtype())
    B = int(np.prod(batch)) if batch else 1
    z = _array(d, _shape(d, (*batch, n), 1), dtype())
    lam = _array(d, _shape(d, (*batch, m), 1), dtype())
    info = _array(d, _shape(d, batch, 0), np.int32 if d.int(0, 5) else dtype())
    check_finite = d.bool()
    nthreads = d.pick([1, 2, 3, 0, -1, 64, 2**31 - 1, 2**40])
    try:
        if fn == 0:
            core.solve(Q, q, A, c, z, lam, info, check_finite, nthreads)
        elif fn == 1:
            N = n + m
            R = int(core.record_size(N))
            rec = _array(d, _shape(d, (*batch, R), 1), dtype())
            core.factorize(Q, A, rec, info, check_finite, nthreads)
        else:
            N = n + m
            R = int(core.record_size(N))
            if GARBAGE_RECORDS:
                rec = _array(d, _shape(d, (*batch, R), 1), dtype())
                finfo = _array(d, _shape(d, batch, 0), np.int32)
            else:
                # records written by factorize for consistent (Q, A) copies; everything else
                # (q, c, outputs, finfo's layout) as decoded
                Qc = np.ascontiguousarray(np.broadcast_to(np.ones((), dt), (*batch, n, n)))
                Qc = Qc + np.eye(n, dtype=dt) * (1 + n)
                Ac = (
                    np.ones((*batch, m, n), dt) / (1 + n) if m <= n else np.ones((*batch, m, n), dt)
                )
                rec = np.zeros((*batch, R), dt)
                finfo = np.zeros(batch, np.int32)
                core.factorize(Qc, Ac, rec, finfo, True, 1)
                if d.bool():  # the caller's Q and A are used for refinement
                    Q, A = Qc, Ac
            core.solve_factored(rec, finfo, Q, q, A, c, z, lam, info, check_finite, nthreads)
    except ALLOWED:
        return
    del B


def main() -> int:
    global GARBAGE_RECORDS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--plain", action="store_true", help="random bytes even if atheris exists")
    p.add_argument("--replay", help="run the target once on this file's bytes")
    p.add_argument("--garbage-records", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args, rest = p.parse_known_args()
    GARBAGE_RECORDS = args.garbage_records
    if args.replay:
        with open(args.replay, "rb") as f:
            target(f.read())
        print("no crash")
        return 0
    try:
        if args.plain:
            raise ImportError
        import atheris
    except ImportError:
        return plain_loop(args.seconds, args.seed)
    libfuzzer_args = [sys.argv[0], f"-max_total_time={int(args.seconds)}", *rest]
    # Coverage of the decoder guides libFuzzer through the shapes, dtypes and layouts (the
    # C++ core is not instrumented).
    for f in (Bytes.int, Bytes.bool, Bytes.value, _shape, _array, target):
        atheris.instrument_func(f)
    atheris.Setup(libfuzzer_args, atheris.instrument_func(target))
    atheris.Fuzz()
    return 0


def plain_loop(seconds: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    last = os.path.join(os.path.dirname(__file__), "..", "build", "fuzz-last-input.bin")
    os.makedirs(os.path.dirname(last), exist_ok=True)
    t_end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < t_end:
        data = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        with open(last, "wb") as f:
            f.write(data)
        target(data)
        count += 1
    print(f"{count} inputs in {seconds:.0f} s, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
