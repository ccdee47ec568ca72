"""Hypothesis fuzzing of every public entry point with hostile input.

Each example draws one call — shapes (0 sizes, broadcasting, mismatches, wrong ranks, 0-d),
dtypes (float16/32/64, big-endian, integers, bool, complex, object, str, long double),
memory layouts (Fortran order, negative, zero and non-unit strides, read-only), values
(NaN, ±Inf, ±1e308, denormals, −0.0, zeros, huge and tiny scales) and check_finite — and
runs it through one of fastkkt.solve / solve_ex, factorize + F.solve / F.solve_ex,
fastkkt.reference.solve / solve_ex and fastkkt.torch.solve / solve_ex (with and without a
backward pass). The allowed outcomes are a correct result or ValueError, TypeError,
MemoryError, KKTError:

* a result has the broadcast shapes and the promised dtype; elements with info ≠ 0 are NaN;
  elements with info = 0 of a finite problem have a small normwise KKT residual
  (fastkkt.testing.kkt_residual, an independent float64 check) and are bitwise what
  fastkkt.solve_ex returns for the same input; gradients of failed elements are zero;
* inputs are never modified;
* a call that is valid (shapes, dtypes, finite values or check_finite=False) never raises
  ValueError or TypeError.

Crashes (a segfault kills the test process) and hangs (pytest-timeout in CI) fail the run.
Number of examples: the hypothesis profile (conftest.py), or FASTKKT_FUZZ_EXAMPLES=2000 for a
long local run.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastkkt
from fastkkt import reference
from fastkkt.testing import kkt_residual, random_qp

torch = pytest.importorskip("torch")
import fastkkt.torch as fkt  # noqa: E402

ALLOWED = (ValueError, TypeError, MemoryError, fastkkt.KKTError)
_EXAMPLES = int(os.environ.get("FASTKKT_FUZZ_EXAMPLES", "0"))
fuzz_settings = (
    settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    if _EXAMPLES
    else settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
)

ENTRY_POINTS = [
    "solve",
    "solve_ex",
    "factorize.solve",
    "factorize.solve_ex",
    "reference.solve",
    "reference.solve_ex",
    "torch.solve",
    "torch.solve_ex",
    "torch.solve+backward",
    "torch.solve_ex+backward",
]
VALID_DTYPES = ["float64", "float32", "float16", ">f8", ">f4", "int64", "int32", "uint8", "bool"]
INVALID_DTYPES = ["complex128", "complex64", "object", "<U8", "longdouble", "datetime64[s]"]
LAYOUTS = ["C", "F", "negative", "sliced", "broadcast", "readonly"]
SPECIAL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, -5e-324, -0.0, 0.0, 1e-300, 3e38]


# --------------------------------------------------------------------------------------------
# drawing a call


@st.composite
def calls(draw):
    n = draw(st.integers(0, 4))
    m = draw(st.integers(0, 3))
    batch = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3]), max_size=3)))
    B = math.prod(batch)
    seed = draw(st.integers(0, 2**16))
    problem = list(random_qp(batch, n, m, seed=seed))
    names = ("Q", "q", "A", "c")
    inner = {"Q": (n, n), "q": (n,), "A": (m, n), "c": (m,)}

    # values
    kind = draw(
        st.sampled_from(["plain", "plain", "scaled", "zeros", "special", "saddle", "singular"])
    )
    if kind == "scaled":
        s = 10.0 ** draw(st.sampled_from([-300, -150, -30, 30, 150, 300]))
        problem = [x * s for x in problem]
    elif kind == "zeros":
        problem = [np.zeros_like(x) for x in problem]
    elif kind == "saddle":
        problem[0] = -problem[0]
    elif kind == "singular" and m >= 2:
        problem[2][..., 1, :] = problem[2][..., 0, :]
    elif kind == "special":
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, 3))
            if problem[i].size:
                flat = problem[i].reshape(-1)
                flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(SPECIAL))

    arrays = []
    for i, name in enumerate(names):
        x = problem[i]
        # broadcasting: drop leading batch dims or shrink some to 1
        keep = draw(st.integers(0, len(batch)))
        if B == 0:
            x = np.ones(batch[len(batch) - keep :] + inner[name])
        else:
            x = x[(0,) * (len(batch) - keep)]
            for d in range(keep):
                if draw(st.integers(0, 3)) == 0:
                    x = np.take(x, [0], axis=d)
        arrays.append(x)

    # shape corruption of one argument
    corrupt = draw(st.sampled_from([None] * 6 + ["0d", "drop", "add", "last+1", "batch"]))
    if corrupt is not None:
        i = draw(st.integers(0, 3))
        x = arrays[i]
        if corrupt == "0d":
            x = np.asarray(1.5)
        elif corrupt == "drop":
            x = x[..., 0] if x.ndim and x.shape[-1] else np.ones(x.shape[:-1])
        elif corrupt == "add":
            x = x[..., None]
        elif corrupt == "last+1":
            x = np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1)
        elif corrupt == "batch":
            x = np.broadcast_to(x, (5, *x.shape)).copy()
        arrays[i] = x

    dtypes = [draw(st.sampled_from(["float64", "float32"]))] * 4
    if draw(st.integers(0, 2)) == 0:
        i = draw(st.integers(0, 3))
        dtypes[i] = draw(st.sampled_from(VALID_DTYPES + INVALID_DTYPES))
    layouts = [draw(st.sampled_from(LAYOUTS)) for _ in range(4)]
    out = []
    for x, dt, lay in zip(arrays, dtypes, layouts):
        out.append(_with_layout(_cast(x, dt), lay, batch))
    return {
        "entry": draw(st.sampled_from(ENTRY_POINTS)),
        "args": out,
        "check_finite": draw(st.booleans()),
        "n": n,
        "m": m,
        "meta": (kind, corrupt, dtypes, layouts, batch, seed),
    }


def _cast(x: np.ndarray, dt: str) -> np.ndarray:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dt.startswith("datetime"):
            return np.zeros(x.shape, dt)
        return np.asarray(x).astype(dt)


def _with_layout(x: np.ndarray, layout: str, batch: tuple) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "negative" and x.ndim:
        return np.flip(np.flip(x, -1).copy(), -1)
    if layout == "sliced" and x.ndim:
        big = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), x.dtype)
        big[..., ::2] = x
        return big[..., ::2]
    if layout == "broadcast" and x.ndim:
        # stride 0 over an extra leading dimension (when that still broadcasts)
        try:
            np.broadcast_shapes(x.shape[:-2] if x.ndim >= 2 else (), batch)
        except ValueError:
            return x
        return np.broadcast_to(x, (1, *x.shape))
    if layout == "readonly":
        x = x.copy()
        x.flags.writeable = False
    return x


# --------------------------------------------------------------------------------------------
# what the answer must look like


def _valid(args, n, m):
    """Whether the call is valid: numeric real dtypes and shapes that match and broadcast."""
    Q, q, A, c = args
    if any(a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and a.itemsize > 8) for a in args):
        return None
    if Q.ndim < 2 or q.ndim < 1 or A.ndim < 2 or c.ndim < 1:
        return None
    n_ = Q.shape[-1]
    if Q.shape[-2] != n_ or q.shape[-1] != n_ or A.shape[-1] != n_ or c.shape[-1] != A.shape[-2]:
        return None
    try:
        return np.broadcast_shapes(Q.shape[:-2], q.shape[:-1], A.shape[:-2], c.shape[:-1])
    except ValueError:
        return None


def _rounded_up(dtypes):
    """The contract's rule, stated with NumPy's own promotion: result_type, rounded up to
    float32 or float64 (float32 with uint8 or bool stays float32; integers alone: float64)."""
    r = np.result_type(*dtypes)
    return np.dtype(np.float32 if r.kind == "f" and r.itemsize <= 4 else np.float64)


def _expected_dtype(args):
    return _rounded_up([a.dtype for a in args])


def _factorization_dtype(args):
    """A factorization computes in the dtype of Q and A and casts q and c to it."""
    return _rounded_up([args[0].dtype, args[2].dtype])


def _finite(args):
    with np.errstate(all="ignore"):
        return all(np.isfinite(a.astype(np.float64)).all() for a in args if a.dtype.kind in "biuf")


def _moderate(args):
    """Finite and in a range where the float64 residual of kkt_residual cannot overflow."""
    with np.errstate(all="ignore"):
        big = max((float(np.abs(a.astype(np.float64)).max(initial=0)) for a in args), default=0)
    return _finite(args) and big < 1e150


def _run(entry, args, check_finite):
    """Call the entry point; returns (z, lam, info or None, grads or None) as NumPy arrays."""
    Q, q, A, c = args
    cf = {"check_finite": check_finite}
    if entry == "solve":
        z, lam = fastkkt.solve(Q, q, A, c, return_multipliers=True, **cf)
        return z, lam, None, None
    if entry == "solve_ex":
        return (*fastkkt.solve_ex(Q, q, A, c, **cf), None)
    if entry == "factorize.solve":
        z, lam = fastkkt.factorize(Q, A, **cf).solve(q, c, return_multipliers=True, **cf)
        return z, lam, None, None
    if entry == "factorize.solve_ex":
        return (*fastkkt.factorize(Q, A, **cf).solve_ex(q, c, **cf), None)
    if entry == "reference.solve":
        z, lam = reference.solve(Q, q, A, c, return_multipliers=True, **cf)
        return z, lam, None, None
    if entry == "reference.solve_ex":
        return (*reference.solve_ex(Q, q, A, c, **cf), None)
    # torch: tensors made from the arrays (keeping stride-0 and non-contiguous layouts where
    # torch can); what torch itself cannot represent is passed as the NumPy array.
    ts = [_tensor(a) for a in args]
    backward = entry.endswith("+backward")
    if backward:
        ts = [t.requires_grad_() if _float_tensor(t) else t for t in ts]
    if entry.startswith("torch.solve_ex"):
        z, lam, info = fkt.solve_ex(*ts, **cf)
    else:
        z, lam = fkt.solve(*ts, return_multipliers=True, **cf)
        info = None
    grads = None
    if backward and (z.requires_grad or lam.requires_grad):
        loss = torch.nan_to_num(z, nan=0.0).sum() + torch.nan_to_num(lam, nan=0.0).sum()
        leaves = [t for t in ts if isinstance(t, torch.Tensor) and t.requires_grad]
        gs = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [(t, g) for t, g in zip(leaves, gs)]
    z, lam = z.detach().numpy(), lam.detach().numpy()
    return z, lam, None if info is None else info.numpy(), grads


def _float_tensor(t):
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _tensor(a):
    if a.dtype.kind not in "biuf" or a.dtype == np.longdouble:
        # torch refuses these itself (TypeError); a read-only one would first warn, once per
        # process (see test_torch_robust.py::test_read_only_ndarray_does_not_warn)
        return a if a.flags.writeable else a.copy()
    if a.dtype.byteorder == ">" or any(s < 0 for s in a.strides):
        # torch has no such tensors (fastkkt.torch given such an ndarray: see
        # test_torch_robust.py::test_numpy_layouts_torch_cannot_represent)
        a = np.array(a, a.dtype.newbyteorder("="), order="C")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about read-only arrays
        try:
            return torch.from_numpy(a) if a.flags.writeable else torch.from_numpy(a.copy())
        except TypeError:  # e.g. uint16 on old torch
            return a


def check_call(call):
    entry, args, cf, n, m = call["entry"], call["args"], call["check_finite"], call["n"], call["m"]
    before = [a.copy() for a in args]
    batch = _valid(args, n, m)
    must_work = batch is not None and (not cf or _finite(args))
    if batch is not None and entry.startswith("factorize"):
        with np.errstate(all="ignore"):  # q and c are cast to the factorization's dtype
            must_work = not cf or _finite([a.astype(_factorization_dtype(args)) for a in args])
    if entry.startswith("reference") and not _finite(args):
        # The reference specifies finite problems only: with check_finite=False its eigvalsh
        # raises LinAlgError (a ValueError) on NaN, where fastkkt reports a status.
        must_work = False
    try:
        with np.errstate(all="ignore"):  # NumPy inside the reference may warn on overflow
            z, lam, info, grads = _run(entry, args, cf)
    except ALLOWED as exc:
        if must_work and not isinstance(exc, (fastkkt.KKTError, MemoryError)):
            raise AssertionError(f"valid call raised {type(exc).__name__}: {exc}") from exc
        if isinstance(exc, fastkkt.KKTError):
            _check_kkt_error(exc, entry, args, cf, batch)
        _unchanged(args, before)
        return "error"
    _unchanged(args, before)
    assert batch is not None, "an invalid call returned a result"
    n = args[0].shape[-1]
    m = args[2].shape[-2]
    dtype = _factorization_dtype(args) if entry.startswith("factorize") else _expected_dtype(args)
    assert z.shape == (*batch, n), (z.shape, batch)
    assert lam.shape == (*batch, m), (lam.shape, batch)
    assert z.dtype == lam.dtype == dtype, (z.dtype, dtype)
    if info is None:
        info = np.zeros(batch, np.int32)
    assert info.shape == batch
    assert info.dtype == np.int32
    assert set(np.unique(info)) <= {0, 1, 2}
    bad = info != 0
    assert np.isnan(z[bad]).all()
    assert np.isnan(lam[bad]).all()
    if _moderate(args) and (info == 0).any():
        Q, q, A, c = (a.astype(np.float64) for a in args)
        r = kkt_residual(Q, q, A, c, z, lam)[info == 0]
        assert np.all(r <= 200 * (n + m + 1) * np.finfo(dtype).eps), (r.max(), call["meta"])
    if _finite(args):
        assert np.isfinite(z[~bad]).all() or not _moderate(args)
    if not entry.startswith("reference"):
        # bitwise what fastkkt.solve_ex gives (NaN in the same places)
        ex_args = [a.astype(dtype) for a in args] if entry.startswith("factorize") else args
        z_ex, lam_ex, info_ex = fastkkt.solve_ex(*ex_args, check_finite=cf)
        np.testing.assert_array_equal(info, np.where(info_ex == 0, info, info_ex))
        np.testing.assert_array_equal(z[info == 0], z_ex[info == 0])
        np.testing.assert_array_equal(lam[info == 0], lam_ex[info == 0])
    if grads is not None:
        _check_grads(grads, info, args)
    return "ok"


def _check_kkt_error(exc, entry, args, cf, batch):
    assert batch is not None
    assert exc.indices, "KKTError without failing indices"
    if not entry.startswith("reference"):
        _, _, info_ex = fastkkt.solve_ex(*args, check_finite=cf)
        assert exc.indices == [tuple(map(int, i)) for i in np.argwhere(info_ex != 0)]


def _check_grads(grads, info, args):
    for t, g in grads:
        if g is None:
            continue
        assert g.shape == t.shape
        assert g.dtype == t.dtype
        if (info != 0).all():  # every element failed: no contribution at all
            assert not g.any()
        elif _moderate(args):
            assert torch.isfinite(g).all()


def _unchanged(args, before):
    for a, b in zip(args, before):
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        if a.dtype.kind in "biufc":
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# the tests


@fuzz_settings
@given(calls())
def test_fuzz_public_entry_points(call):
    check_call(call)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("check_finite", [True, False])
def test_fuzz_every_entry_point_sees_special_values(entry, check_finite):
    """A deterministic sweep: each special value in each argument of each entry point."""
    Q, q, A, c = random_qp(2, 3, 1, seed=7)
    for i in range(4):
        for v in SPECIAL:
            args = [Q.copy(), q.copy(), A.copy(), c.copy()]
            args[i].reshape(-1)[0] = v
            check_call(
                {"entry": entry, "args": args, "check_finite": check_finite, "n": 3, "m": 1}
                | {"meta": (i, v)}
            )


# Requests whose broadcast size is far beyond any memory, built from stride-0 views of tiny
# arrays: they must fail fast (MemoryError or ValueError) without trying to allocate.
HUGE = [
    ((2**27, 2**27, 4, 4), (4,), (1, 4), (1,)),  # Q broadcast to 2⁵⁴ problems
    ((4, 4), (2**40, 1, 4), (1, 4), (2**20, 1)),  # batch only from broadcasting q against c
    ((3, 3), (2**28, 2**28, 3), (0, 3), (0,)),  # unconstrained, 2⁵⁶ right-hand sides
    ((2**40, 2, 2), (2,), (2**20, 1, 1, 2), (1,)),
    ((2**16, 2**16, 4, 4), (4,), (0, 4), (0,)),  # 2³² problems: 128 GiB of z alone
]


@pytest.mark.parametrize("shapes", HUGE, ids=str)
@pytest.mark.parametrize("entry", ["solve_ex", "factorize", "torch.solve_ex"])
def test_huge_broadcast_raises(shapes, entry):
    args = [np.broadcast_to(np.float64(1.0), s) for s in shapes]

    def call():
        if entry == "solve_ex":
            fastkkt.solve_ex(*args)
        elif entry == "factorize":
            fastkkt.factorize(args[0], args[2]).solve(args[1], args[3])
        else:
            fkt.solve_ex(*(torch.ones((), dtype=torch.float64).expand(s) for s in shapes))

    with pytest.raises((MemoryError, ValueError)):
        call()
