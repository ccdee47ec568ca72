"""Backward stability, and status on clearly singular / clearly saddle problems.

For each family of hard problems, in float64 and in float32, every element's normwise backward
error (fastkkt.testing.kkt_residual, measured with compensated arithmetic and elementwise
operations only, so the same under every BLAS) must be at most a small multiple of the unit
roundoff of the dtype:

    berr_fastkkt <= 4 · eps        for every element fastkkt solved.

The verdict depends on fastkkt's results alone: LAPACK's symmetric indefinite solver (xSYSV,
Bunch–Kaufman, via ``scipy.linalg.solve(K, b, assume_a="sym")``) is the yardstick of the table
that ``python tests/test_accuracy.py`` prints, not of the test, since its backward error moves
with the LAPACK build (a bound of max(4·berr_lapack, 4·eps) passed or failed by build).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

import fastkkt
from fastkkt import reference
from fastkkt.testing import (
    ill_conditioned_qp,
    indefinite_qp,
    kkt_matrix,
    kkt_residual,
    psd_qp,
    random_qp,
)

FACTOR = 4.0
B = 64


def _nearly_dependent(dtype, N_big=False):
    n, m = (60, 20) if N_big else (10, 4)
    Q, q, A, c = random_qp(B // 4 if N_big else B, n, m, seed=11)
    delta = 1e-7 if dtype == np.float64 else 3e-2
    rng = np.random.default_rng(11)
    A[..., 1, :] = A[..., 0, :] + delta * rng.standard_normal(A[..., 0, :].shape)
    return Q, q, A, c


def _bad_rows(dtype):
    Q, q, A, c = random_qp(B, 10, 4, seed=12)
    k = 3 if dtype == np.float64 else 1
    s = np.logspace(-k, k, 4)
    return Q, q, A * s[:, None], c * s


def _scaled(s):
    def make(dtype):
        return tuple(x * s for x in random_qp(B, 10, 4, seed=13))

    return make


def _huge_tiny(dtype):
    return (1e150, 1e-150) if dtype == np.float64 else (1e15, 1e-15)


# name -> function(dtype) giving float64 (Q, q, A, c); cast to the dtype afterwards
def _cond(k, big=False):
    def make(dtype):
        if big:
            return ill_conditioned_qp(8, 60, 20, cond=k, seed=2)
        return ill_conditioned_qp(B, 10, 4, cond=k, seed=1)

    return make


FAMILIES = {
    **{f"cond(Q)=1e{int(np.log10(k))}": _cond(k) for k in (1.0, 1e4, 1e8, 1e12)},
    **{f"cond(Q)=1e{int(np.log10(k))},N=80": _cond(k, True) for k in (1.0, 1e4, 1e8, 1e12)},
    "nearly dependent A rows": lambda dt: _nearly_dependent(dt),
    "nearly dependent A rows,N=80": lambda dt: _nearly_dependent(dt, True),
    "psd Q (singular, zero on range Aᵀ)": lambda dt: psd_qp(B, 10, 4, seed=3),
    "indefinite Q": lambda dt: indefinite_qp(B, 10, 4, seed=4),
    "indefinite Q,N=80": lambda dt: indefinite_qp(8, 60, 20, seed=5),
    "huge scale": lambda dt: _scaled(_huge_tiny(dt)[0])(dt),
    "tiny scale": lambda dt: _scaled(_huge_tiny(dt)[1])(dt),
    "badly scaled A rows": lambda dt: _bad_rows(dt),
}
DTYPES = [np.float64, np.float32]


def _sweep_params():
    for family in FAMILIES:
        for dtype in DTYPES:
            yield pytest.param(family, dtype, id=f"{family}-{np.dtype(dtype).name}")


def _lapack(Q, q, A, c):
    """x = K⁻¹ b per element with LAPACK xSYSV in the dtype of the inputs."""
    K = kkt_matrix(Q, A)
    b = np.concatenate([-q, c], axis=-1)
    x = np.full(b.shape, np.nan, dtype=K.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        for i in np.ndindex(K.shape[:-2]):
            try:
                x[i] = scipy.linalg.solve(K[i], b[i], assume_a="sym")
            except np.linalg.LinAlgError:
                pass
    n = Q.shape[-1]
    return x[..., :n], x[..., n:]


def measure(family: str, dtype, lapack: bool = True):
    """(berr of fastkkt, berr of LAPACK or None, info) over the family's batch."""
    Q, q, A, c = (x.astype(dtype) for x in FAMILIES[family](dtype))
    z, lam, info = fastkkt.solve_ex(Q, q, A, c)
    with np.errstate(all="ignore"):
        berr = kkt_residual(Q, q, A, c, z, lam)
        berr_l = kkt_residual(Q, q, A, c, *_lapack(Q, q, A, c)) if lapack else None
    return berr, berr_l, info


@pytest.mark.parametrize(("family", "dtype"), list(_sweep_params()))
def test_backward_error_is_a_few_eps(family, dtype):
    berr, _, info = measure(family, dtype, lapack=False)
    eps = np.finfo(dtype).eps
    # Every family is a well-posed strict minimum: never status 2. In float64 every element
    # must be solved; in float32 the most ill-conditioned ones may be called singular.
    assert not np.any(info == 2)
    if dtype == np.float64 or ("cond(Q)=1e1" not in family and "1e8" not in family):
        np.testing.assert_array_equal(info, 0, err_msg=family)
    ok = info == 0
    if not ok.any():  # float32, cond(K) beyond what float32 resolves: the reference agrees
        _, _, info_ref = reference.solve_ex(*(x.astype(dtype) for x in FAMILIES[family](dtype)))
        np.testing.assert_array_equal(info_ref, 1)
        return
    worst = berr[ok].max()
    assert worst <= FACTOR * eps, f"{family} {np.dtype(dtype)}: backward error {worst:.3g}"


# --------------------------------------------------------------------------------------------
# status of clearly singular and clearly non-minimal problems, unchanged by scaling

SCALES = {np.float64: (1.0, 1e100, 1e-100), np.float32: (1.0, 1e15, 1e-15)}


def _dependent_rows():
    Q, q, A, c = random_qp(20, 6, 3, seed=21)
    A[..., 1, :] = A[..., 0, :]
    A[10:, 2, :] = 2 * A[10:, 0, :]
    return (Q, q, A, c), 1


def _more_rows_than_vars():
    return random_qp(20, 3, 4, seed=22), 1


def _q_zero_on_null_space():
    Q, q, A, c = random_qp(20, 6, 2, seed=23)
    return (np.zeros_like(Q), q, A, c), 1


def _q_negative_definite():
    Q, q, A, c = random_qp(20, 6, 2, seed=24)
    return (-Q, q, A, c), 2


def _q_negative_on_null_space():
    Q, q, A, c = psd_qp(20, 6, 2, seed=25)  # Q = Z S Zᵀ: positive definite on null(A)
    return (-Q, q, A, c), 2


def _saddle_unconstrained():
    Q, q, A, c = indefinite_qp(20, 6, 0, seed=26)
    Q = Q.copy()
    Q[..., 0, 0] = -5.0
    Q[..., 0, 1:] = Q[..., 1:, 0] = 0.0
    return (Q, q, A, c), 2


BAD = {
    "dependent rows": _dependent_rows,
    "m > n": _more_rows_than_vars,
    "Q = 0": _q_zero_on_null_space,
    "Q negative definite": _q_negative_definite,
    "Q negative on null(A)": _q_negative_on_null_space,
    "saddle, m = 0": _saddle_unconstrained,
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(BAD))
def test_status_of_bad_problems_is_scale_invariant(case, dtype):
    (Q, q, A, c), expected = BAD[case]()
    for s in SCALES[dtype]:
        args = [(x * s).astype(dtype) for x in (Q, q, A, c)]
        z, lam, info = fastkkt.solve_ex(*args)
        np.testing.assert_array_equal(info, expected, err_msg=f"{case}, scale {s:g}")
        assert np.isnan(z).all()
        assert np.isnan(lam).all()
        _, _, info_ref = reference.solve_ex(*args)
        np.testing.assert_array_equal(info_ref, expected, err_msg=f"reference, {case}")
        F = fastkkt.factorize(args[0], args[2])
        np.testing.assert_array_equal(F.info, expected)
        with pytest.raises(fastkkt.KKTError) as err:
            fastkkt.solve(*args)
        assert len(err.value.indices) == info.size


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_good_problems_mixed_with_bad_keep_their_answers(dtype):
    """A batch mixing every bad case with good ones: the good ones are solved exactly as when
    alone, at every scale."""
    good = random_qp(20, 6, 2, seed=30)
    bad, expected = _q_negative_on_null_space()
    Q = np.concatenate([good[0], bad[0]])
    q, A, c = (np.concatenate([g, b]) for g, b in zip(good[1:], bad[1:]))
    for s in SCALES[dtype]:
        args = [(x * s).astype(dtype) for x in (Q, q, A, c)]
        z, _, info = fastkkt.solve_ex(*args)
        np.testing.assert_array_equal(info[:20], 0)
        np.testing.assert_array_equal(info[20:], expected)
        z_alone = fastkkt.solve(*(x[:20] for x in args))
        np.testing.assert_array_equal(z[:20], z_alone)


def table() -> str:
    rows = [
        "| problems | dtype | fastkkt max / median | LAPACK max / median | max ratio | solved |"
    ]
    rows.append("|---|---|---|---|---|---|")
    for family in FAMILIES:
        for dtype in DTYPES:
            berr, berr_l, info = measure(family, dtype)
            ok = info == 0
            if not ok.any():
                rows.append(f"| {family} | {np.dtype(dtype)} | all singular | | | 0/{ok.size} |")
                continue
            ratio = np.max(berr[ok] / np.maximum(berr_l[ok], np.finfo(dtype).eps))
            rows.append(
                f"| {family} | {np.dtype(dtype)} | {berr[ok].max():.2g} / "
                f"{np.median(berr[ok]):.2g} | {np.nanmax(berr_l):.2g} / "
                f"{np.nanmedian(berr_l):.2g} | {ratio:.2f} | {ok.sum()}/{ok.size} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
