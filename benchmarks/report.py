"""Time fastkkt and its peers against this machine's roofline, in one process.

    python benchmarks/report.py [--quick] [--out benchmarks/results]

Measures peak float64 GFLOP/s (a 4000² matmul, all cores) and copy bandwidth, then times
every method of ``methods.py`` that imports here on every case (warm-up, then the median of
repeats), checking each answer as the pytest benchmarks do; then the solve_qp cases of
BENCH_QP.md (``--no-qp`` leaves them out), with each method's iteration counts. Writes
``report.md`` (the tables),
``report.json`` (the raw numbers) and ``report.png`` (forward time per problem vs n+m).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from methods import (
    BACKWARD,
    FASTKKT,
    FORWARD,
    QP_FORWARD,
    Method,
    Problem,
    QPProblem,
    case_name,
    cases,
    flops,
    ideal_seconds,
    input_bytes,
    qp_cases,
)

import fastkkt


def best_of(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_flops(size: int = 4000, repeats: int = 3) -> float:
    """float64 FLOP/s of a size² matmul (NumPy's BLAS, every core it uses); best of repeats."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size))
    a @ b  # warm-up
    return 2 * size**3 / best_of(lambda: a @ b, repeats)


def copy_bandwidth(nbytes: int = 1 << 28, repeats: int = 5) -> float:
    """Bytes read + written per second by a copy of a large array (one thread)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # warm-up, and faults the pages in
    return 2 * nbytes / best_of(lambda: np.copyto(dst, src), repeats)


def median_seconds(run: Callable[[], Any], budget: float) -> tuple[float, Any]:
    """Median time of `run` after one warm-up call, repeated for about `budget` seconds
    (3 to 200 times). Returns it with the warm-up's result."""
    out = run()
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    repeats = int(min(200, max(3, budget / max(first, 1e-9))))
    times = [first]
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def measure(method: Method, p: Problem, backward: bool, budget: float) -> dict[str, Any]:
    """{'ms': median} for a correct answer, else {'error': why}."""
    if not method.applies(p.case):
        return {"error": "not run (Python loop, B > 1024)"}
    reason = method.missing()
    if reason:
        return {"error": reason}
    try:
        seconds, out = median_seconds(method.make(p), budget)
        (p.check_grads if backward else p.check_z)(out, method.rtol)
    except AssertionError as exc:
        print(f"  {method.name}: WRONG ANSWER: {exc}", file=sys.stderr)
        return {"error": "wrong answer"}
    except Exception as exc:
        print(f"  {method.name}: failed: {exc!r}", file=sys.stderr)
        return {"error": f"failed: {type(exc).__name__}"}
    return {"ms": 1e3 * seconds}


def measure_qp(method: Method, p: QPProblem, budget: float) -> dict[str, Any]:
    """{'ms': median, 'iterations': [min, median, max]} for answers within 1e-6 of the
    polished reference, else {'error': why}."""
    reason = method.missing()
    if reason:
        return {"error": reason}
    try:
        seconds, (z, iterations) = median_seconds(method.make(p), budget)
        p.check_z(z, method.rtol)
    except AssertionError as exc:
        print(f"  {method.name}: WRONG ANSWER: {exc}", file=sys.stderr)
        return {"error": "wrong answer"}
    except Exception as exc:
        print(f"  {method.name}: failed: {exc!r}", file=sys.stderr)
        return {"error": f"failed: {type(exc).__name__}"}
    entry: dict[str, Any] = {"ms": 1e3 * seconds}
    if iterations is not None:
        it = np.asarray(iterations)
        entry["iterations"] = [int(it.min()), float(np.median(it)), int(it.max())]
    return entry


# --------------------------------------------------------------------------------------------
# output


def fmt_ms(ms: float) -> str:
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}" if ms >= 0.001 else f"{ms:.5f}"


def fmt_times(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def cell(entry: dict[str, Any], base: dict[str, Any]) -> str:
    """'ms (multiple of base)', or why there is no number."""
    if "ms" not in entry:
        return "✗" if entry["error"].startswith(("wrong", "failed")) else "–"
    if "ms" not in base:
        return fmt_ms(entry["ms"])
    return f"{fmt_ms(entry['ms'])} ({fmt_times(entry['ms'] / base['ms'])})"


def markdown(results: dict[str, Any]) -> str:
    env = results["machine"]
    fwd_names = [m for m in results["forward_methods"] if m != FASTKKT]
    bwd_names = results["backward_methods"]
    lines = [
        "# fastkkt benchmark report",
        "",
        f"{env['when']} · {env['cpu']} · {env['cores']} cores · fastkkt {env['fastkkt']} "
        f"({env['variant']}, {env['threads']} threads) · NumPy {env['numpy']} · "
        f"peak {env['peak_gflops']:.1f} GFLOP/s (matmul 4000²) · "
        f"copy bandwidth {env['bandwidth_gbs']:.1f} GB/s{' · quick' if env['quick'] else ''}",
        "",
        "Median ms. ideal = max(flops / peak, input bytes / bandwidth) with flops = "
        "B((n+m)³/3 + 2(n+m)²) and input bytes = 8·B·(n² + n + mn + m). Peers: ms "
        "(multiple of fastkkt's time). – not run here, ✗ wrong answer or failure.",
        "",
        "## Forward",
        "",
        "| case | ideal ms | fastkkt ms | × ideal | fastkkt fwd+bwd ms | fwd+bwd / fwd | "
        + " | ".join(fwd_names)
        + " |",
        "|---" * (6 + len(fwd_names)) + "|",
    ]
    for row in results["cases"]:
        fk, fb = row["forward"][FASTKKT], row["backward"].get(bwd_names[0], {"error": "-"})
        ideal = row["ideal_ms"]
        lines.append(
            f"| {row['name']} | {fmt_ms(ideal)} | {cell(fk, {})} | "
            + (fmt_times(fk["ms"] / ideal) if "ms" in fk else "–")
            + f" | {cell(fb, {})} | "
            + (fmt_times(fb["ms"] / fk["ms"]) if "ms" in fk and "ms" in fb else "–")
            + " | "
            + " | ".join(cell(row["forward"][name], fk) for name in fwd_names)
            + " |"
        )
    lines += [
        "",
        f"## Forward + backward (gradients of sum(w·z) w.r.t. Q, q, A, c; peers × {bwd_names[0]})",
        "",
        "| case | " + " | ".join(bwd_names) + " |",
        "|---" * (1 + len(bwd_names)) + "|",
    ]
    for row in results["cases"]:
        base = row["backward"][bwd_names[0]]
        cells = [cell(base, {})] + [cell(row["backward"][name], base) for name in bwd_names[1:]]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fmt_iterations(entry: dict[str, Any]) -> str:
    if "iterations" not in entry:
        return "–"
    lo, med, hi = entry["iterations"]
    return f"{med:.0f}" if lo == hi else f"{lo}–{hi} ({med:.0f})"


def qp_markdown(results: dict[str, Any]) -> str:
    """The solve_qp tables: median ms (multiple of fastkkt's) and iterations (min–max
    (median)) per case and method."""
    names = results["qp_methods"]
    peers = [name for name in names if name != FASTKKT]
    lines = [
        "## solve_qp forward (BENCH_QP.md)",
        "",
        "Median ms per whole batch, conversions included; peers: ms (multiple of fastkkt's "
        "time). Every answer within 1e-6 of the polished reference (Clarabel 1e-10 + "
        "active-set polish), else ✗.",
        "",
        "| case | B | n | m | p | " + " | ".join(names) + " | fastkkt µs per QP |",
        "|---" * (6 + len(names)) + "|",
    ]
    for row in results["qp_cases"]:
        fk = row["forward"].get(FASTKKT, {"error": "-"})
        cells = [cell(fk, {})] + [cell(row["forward"][name], fk) for name in peers]
        per_qp = f"{1e3 * fk['ms'] / row['B']:.3g}" if "ms" in fk else "–"
        lines.append(
            f"| {row['name']} | {row['B']} | {row['n']} | {row['m']} | {row['p']} | "
            + " | ".join(cells)
            + f" | {per_qp} |"
        )
    lines += [
        "",
        "Iterations per problem, min–max (median):",
        "",
        "| case | " + " | ".join(names) + " |",
        "|---" * (1 + len(names)) + "|",
    ]
    for row in results["qp_cases"]:
        cells = [fmt_iterations(row["forward"][name]) for name in names]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    rows = results["cases"]

    def draw(per_problem: Callable[[dict[str, Any]], float], label: str, **style) -> None:
        """Batched cases joined by a line, the single problems (B = 1) as open squares."""
        pts = [(row["n"] + row["m"], row["B"], per_problem(row)) for row in rows]
        batched = [(s, t) for s, B, t in pts if B > 1]
        single = [(s, t) for s, B, t in pts if B == 1]
        (line,) = ax.plot(*zip(*batched), label=label, **style)
        if single:
            ax.plot(*zip(*single), "s", mfc="none", color=line.get_color())

    draw(lambda row: row["ideal_ms"] / row["B"], "ideal (roofline)", ls="--", color="0.4")
    for i, name in enumerate(results["forward_methods"]):
        style = {"lw": 2.5, "color": "k"} if name == FASTKKT else {"lw": 1, "color": f"C{i}"}
        draw(
            lambda row, name=name: row["forward"][name].get("ms", np.nan) / row["B"],
            name,
            marker="o",
            **style,
        )
    ax.set(xscale="log", yscale="log", xlabel="system size n + m", ylabel="ms per problem")
    ax.set_title("Forward solve, float64 (squares: one problem, B = 1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the two biggest cases")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--budget", type=float, default=1.0, help="seconds of repeats per method and case"
    )
    parser.add_argument("--no-qp", action="store_true", help="leave out the solve_qp cases")
    args = parser.parse_args(argv)

    print("measuring the roofline ...", flush=True)
    peak, bandwidth = peak_flops(), copy_bandwidth()
    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    results: dict[str, Any] = {
        "machine": {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "cpu": platform.processor() or platform.machine(),
            "cores": len(os.sched_getaffinity(0)),
            "fastkkt": fastkkt.__version__,
            "variant": fastkkt.cpu_variant,
            "threads": fastkkt.get_num_threads(),
            "torch_threads": torch_threads,
            "numpy": np.__version__,
            "peak_gflops": peak / 1e9,
            "bandwidth_gbs": bandwidth / 1e9,
            "quick": args.quick,
        },
        "forward_methods": [m.name for m in FORWARD],
        "backward_methods": [m.name for m in BACKWARD],
        "cases": [],
        "qp_methods": [m.name for m in QP_FORWARD],
        "qp_cases": [],
    }
    print(f"peak {peak / 1e9:.1f} GFLOP/s, copy bandwidth {bandwidth / 1e9:.1f} GB/s")

    for case in cases(args.quick):
        B, n, m = case
        p = Problem(case)
        row = {
            "name": case_name(case),
            "B": B,
            "n": n,
            "m": m,
            "flops": flops(case),
            "input_bytes": input_bytes(case),
            "ideal_ms": 1e3 * ideal_seconds(case, peak, bandwidth),
            "forward": {},
            "backward": {},
        }
        print(f"{row['name']}:", flush=True)
        for kind, methods in (("forward", FORWARD), ("backward", BACKWARD)):
            for method in methods:
                entry = measure(method, p, kind == "backward", args.budget)
                row[kind][method.name] = entry
                print(f"  {kind:8} {method.name:32} {entry.get('ms', entry.get('error'))}")
        results["cases"].append(row)
        del p

    for name in [] if args.no_qp else qp_cases(args.quick):
        qp = QPProblem(name)
        print(f"qp {name}: polished reference ...", flush=True)
        qp.z_ref  # noqa: B018
        row = {"name": name, "B": qp.B, "n": qp.n, "m": qp.m, "p": qp.p, "forward": {}}
        for method in QP_FORWARD:
            entry = measure_qp(method, qp, args.budget)
            row["forward"][method.name] = entry
            print(f"  qp       {method.name:32} {entry.get('ms', entry.get('error'))}")
        results["qp_cases"].append(row)

    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(results)
    if results["qp_cases"]:
        table += "\n" + qp_markdown(results)
    (args.out / "report.md").write_text(table, encoding="utf-8")
    (args.out / "report.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(results, args.out / "report.png")
    print()
    print(table)
    print(f"wrote {args.out / 'report.md'}, report.json and report.png")


if __name__ == "__main__":
    main()
