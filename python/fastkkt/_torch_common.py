"""What fastkkt.torch's two layers (torch.py: solve; _torch_qp.py: solve_qp) share: inputs
made CPU tensors of one compute dtype by the rules of fastkkt._validate, NumPy views of tensors
for the NumPy engine, the test for a tracer, and the eager autograd.Function base class."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from fastkkt import _validate as v

__all__ = ["Function", "functorch_active", "np_view", "prepare", "traced"]

FLOAT_DTYPES = (torch.float64, torch.float32)
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def np_view(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (shares memory, also for expanded stride-0 tensors; a
    lazily negated view is resolved into a copy). numpy(force=True) detaches in C++: ~10×
    cheaper than detach() and numpy() from Python, which counts in the backward pass of small
    problems. The inputs are CPU tensors here (checked before), so it never moves data."""
    try:
        return t.numpy(force=True)
    except RuntimeError as exc:  # a tensor without storage that no fastkkt rule unwrapped
        raise NotImplementedError(
            "fastkkt.torch got a tensor without data here: the transform in use is not "
            "supported (torch.autograd.grad(is_grads_batched=True) and "
            "torch.autograd.functional's vectorize=True use torch's legacy vmap); use "
            f"torch.func (vmap, grad, jacrev, jacfwd, hessian) instead. ({exc})"
        ) from exc


def traced(probe: torch.Tensor) -> bool:
    """Whether a tracer records this call (torch.compile / AOT autograd, whose tensors are
    subclasses such as FakeTensor, or torch.jit.trace): it then calls the registered
    operators, which the trace records, instead of their Python implementations."""
    return torch.compiler.is_compiling() or type(probe) not in _PLAIN or torch.jit.is_tracing()


#: True while a torch.func transform (grad, vmap, jvp, jacrev, …) is active; its tensors are
#: wrappers without storage, which only autograd.Function.apply (and its vmap rule) unwraps.
functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


# --------------------------------------------------------------------------------------------
# inputs


def _torchable(x: Any) -> Any:
    """An ndarray torch can wrap: a copy when it has negative strides, non-native byte order or
    is read-only (torch rejects the first two and warns on the third; inputs are never
    written, and the NumPy API accepts all three)."""
    if isinstance(x, np.ndarray) and (
        any(s < 0 for s in x.strides) or not x.dtype.isnative or not x.flags.writeable
    ):
        return np.array(x, dtype=x.dtype.newbyteorder("="))
    return x


def _tensor(x: Any, name: str) -> torch.Tensor:
    """A non-tensor input as NumPy sees it (``numpy.asarray``: a list of floats is float64,
    not torch's default dtype), wrapped without a copy where torch can."""
    return torch.from_numpy(_torchable(v.as_array(x, name)))


def _check_tensor(t: torch.Tensor, name: str) -> None:
    """Clear errors for tensors fastkkt.torch cannot solve with, naming the argument."""
    if t.is_nested:
        raise TypeError(
            f"{name} is a nested tensor; fastkkt.torch takes dense tensors with a common n "
            "and m (pad with torch.nested.to_padded_tensor, or solve each size separately)"
        )
    if t.layout != torch.strided:
        raise TypeError(
            f"{name} has layout {t.layout}; fastkkt.torch takes dense (strided) tensors: "
            "convert with .to_dense()"
        )
    if t.device.type != "cpu":
        where = "a meta tensor (shapes without data)" if t.is_meta else f"on device {t.device}"
        raise NotImplementedError(
            f"{name} is {where}: fastkkt.torch computes on CPU tensors only; "
            "pass CPU tensors (.cpu())"
        )
    if t.is_complex():
        raise TypeError(
            f"{name} has dtype {t.dtype}; fastkkt solves real problems in float32 or float64"
        )


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "f"
    return "b" if dtype == torch.bool else "i"


def _is_weak(x: Any) -> bool:
    """A Python scalar: it takes no part in dtype promotion (as in NumPy)."""
    return isinstance(x, numbers.Real) and not isinstance(x, (np.generic, torch.Tensor))


def prepare(
    named: dict[str, Any], weak: tuple[str, ...] = ()
) -> tuple[list[torch.Tensor | None], torch.dtype]:
    """The inputs as tensors of one compute dtype, chosen as the NumPy API chooses it
    (fastkkt._validate: NumPy's promotion rounded up to float32 or float64; float32 with int8
    or bool stays float32, integers alone become float64). Python scalars for the names in
    `weak` take no part in the promotion (they become 0-d tensors of the compute dtype); None
    stays None. The casts are differentiable, so gradients come back in each input's dtype."""
    ts: list[Any] = []
    strong: list[torch.Tensor] = []
    for name, x in named.items():
        if x is None or (name in weak and _is_weak(x)):
            ts.append(x)
            continue
        t = x if isinstance(x, torch.Tensor) else _tensor(x, name)
        _check_tensor(t, name)
        ts.append(t)
        strong.append(t)
    dtype = strong[0].dtype
    if not (dtype in FLOAT_DTYPES and all(t.dtype == dtype for t in strong)):  # promote
        size = v.compute_itemsize((_kind(t.dtype), t.dtype.itemsize) for t in strong)
        dtype = torch.float32 if size == 4 else torch.float64
    out: list[torch.Tensor | None] = []
    for t in ts:
        if t is None or isinstance(t, torch.Tensor):
            out.append(t if t is None or t.dtype == dtype else t.to(dtype))
        else:
            out.append(torch.tensor(float(t), dtype=dtype))
    return out, dtype


# --------------------------------------------------------------------------------------------
# eager autograd.Functions

try:  # what torch.autograd.Function.apply calls outside functorch transforms (torch 2.1–2.13)
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap_dead_wrappers

    _FAST_APPLY = hasattr(torch._C, "_are_functorch_transforms_active")
except ImportError:  # pragma: no cover - a torch that moved them: the ordinary apply
    _FAST_APPLY = False


class Function(torch.autograd.Function):
    """An autograd.Function whose apply skips the per-call ``inspect.signature`` binding of
    default arguments that ``torch.autograd.Function.apply`` does when setup_context is
    separate (our forwards have no defaults): the rest of what it does outside functorch
    transforms, else the ordinary apply. Measured in benchmarks/test_bench_torch_apply.py
    (the group compares both): a tenth of a forward + backward at n + m = 20."""

    @classmethod
    def apply(cls, *args: Any) -> Any:  # type: ignore[override]
        if _FAST_APPLY and not functorch_active():
            base = super(torch.autograd.Function, cls)
            return base.apply(*_unwrap_dead_wrappers(args))  # type: ignore[attr-defined]
        return super().apply(*args)
