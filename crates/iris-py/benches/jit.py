"""The JIT behind ``@iris.offload`` against the field: compile time, scalar call cost, GB/s.

Run by ``cargo xtask bench`` with the venv's python (``IRIS_BENCH_QUICK=1`` shrinks the repeat
counts, not the 10M-element inputs); prints a table and writes
``$IRIS_BENCH_OUT/python_jit.json`` when that variable is set::

    {"suite": "python-jit", "rows": [{"scenario": ..., "unit": "ms" | "ns" | "GB/s",
      "higher_is_better": bool, "iris": float, "peers": {name: float},
      "target": {"ratio": float, "against": peer name}}]}

``target`` (absent when there is none) compares *speeds*: Iris must be at least ``ratio`` times
as fast as the peer named by ``against``. For ``higher_is_better`` units (GB/s) that is
``iris >= ratio * peer``; for lower-is-better units (ms, ns) it is
``iris_time <= peer_time / ratio`` (``ratio`` 0.6667 against an empty Python function: at most
1.5x its cost). The absolute compile budget of 1 ms is the peer ``"1 ms budget"``.

Every peer runs in the same process and run, on the same inputs: an empty Python function and
the plain Python function (CPython), numpy when installed, numba's ``@njit`` when it installs
(its compile time includes the first call, as numba compiles lazily). GB/s = bytes of input
read / wall time; the CPython loop runs on a smaller input and is scaled by its own size.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import timeit
from array import array
from typing import Any, Callable, Dict, List, Optional, Tuple

import iris
from iris import jit

QUICK = os.environ.get("IRIS_BENCH_QUICK") == "1"
N = 10_000_000
CALLS = 200_000
REPEAT = 10 if QUICK else 30
PASSES = 5 if QUICK else 15

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is optional
    np = None  # type: ignore[assignment]

try:
    import numba
except Exception:  # pragma: no cover - numba is optional (and often lags CPython)
    numba = None  # type: ignore[assignment]

COMPILE_EXPRS = [
    ("magnitude", "(x*x + y*y + z*z) ** 0.5", ["x", "y", "z"]),
    ("polynomial", "((3.0*x + 2.0)*x - 7.5)*x + y/z", ["x", "y", "z"]),
    ("branchy", "max(x, y) if x < y < z else min(abs(x - y), sin(z))", ["x", "y", "z"]),
    ("range sum", "sum(i*i for i in range(1, n) if i % 2)", ["n"]),
    ("python semantics", "q = a // b\nr = a % b\n-q ** 2 + r if a < b < 100 else round(a / b) + q",
     ["a", "b"]),
]


def ns_per_call(contenders: Dict[str, Callable[..., Any]], args: tuple) -> Dict[str, float]:
    """ns per call of each contender: the cheapest of ``REPEAT`` rounds of ``CALLS`` calls
    (loop included, identically for every contender). Rounds interleave the contenders, so a
    noisy neighbour slows all of them alike."""
    timers = {
        name: timeit.Timer("f(a0, a1, a2)",
                           globals={"f": f, "a0": args[0], "a1": args[1], "a2": args[2]})
        for name, f in contenders.items()
    }
    best = {name: math.inf for name in contenders}
    for _ in range(REPEAT):
        for name, t in timers.items():
            best[name] = min(best[name], t.timeit(CALLS) / CALLS * 1e9)
    return best


def best_seconds(fn: Callable[[], Any], passes: int = PASSES) -> float:
    fn()  # warm: page faults, lazy compilation, thread start-up
    best = math.inf
    for _ in range(passes):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


def gbps_interleaved(contenders: Dict[str, Tuple[Callable[[], Any], int]]) -> Dict[str, float]:
    """GB/s of each contender (bytes read / best wall time of ``PASSES`` rounds); rounds
    interleave the contenders so that load from elsewhere hits all of them alike."""
    for f, _ in contenders.values():
        f()  # warm: page faults, lazy compilation, thread start-up
    best = {name: math.inf for name in contenders}
    for _ in range(PASSES):
        for name, (f, _) in contenders.items():
            # let the previous contender's helper threads (OpenBLAS spins after np.dot) go idle
            time.sleep(0.02)
            t0 = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: gbps(contenders[name][1], t) for name, t in best.items()}


# ---------------------------------------------------------------------------------------------
# compile time


def compile_rows() -> List[Dict[str, Any]]:
    times = []
    for _, src, params in COMPILE_EXPRS:
        samples = []
        for _ in range(5 if QUICK else 15):
            t0 = time.perf_counter()
            jit.jit_compile(src, params)
            samples.append(time.perf_counter() - t0)
        times.append(statistics.median(samples) * 1e3)
    peers: Dict[str, float] = {"1 ms budget": 1.0}
    if numba is not None:
        def magnitude(x, y, z):
            return (x * x + y * y + z * z) ** 0.5

        samples = []
        for _ in range(1 if QUICK else 3):
            t0 = time.perf_counter()
            numba.njit(cache=False)(magnitude)(1.0, 2.0, 3.0)
            samples.append(time.perf_counter() - t0)
        peers["numba"] = statistics.median(samples) * 1e3
    return [{
        "scenario": f"compile per expression (median of {len(COMPILE_EXPRS)})",
        "unit": "ms",
        "higher_is_better": False,
        "iris": statistics.median(times),
        "peers": peers,
        "target": {"ratio": 1.0, "against": "1 ms budget"},
    }]


# ---------------------------------------------------------------------------------------------
# scalar calls


def empty(x, y, z):
    pass


def magnitude_py(x, y, z):
    return (x * x + y * y + z * z) ** 0.5


@iris.offload(strategy="jit", return_type="float")
def magnitude(x, y, z):
    return (x * x + y * y + z * z) ** 0.5


def scalar_rows() -> List[Dict[str, Any]]:
    assert jit.compiled(magnitude) is not None, "the magnitude must compile"
    args = (1.5, 2.5, 3.5)
    assert magnitude(*args) == magnitude_py(*args)
    contenders: Dict[str, Callable[..., Any]] = {
        "iris": magnitude,
        "empty python fn": empty,
        "python": magnitude_py,
    }
    if numba is not None:
        nb = numba.njit(magnitude_py)
        nb(*args)
        contenders["numba"] = nb
    peers = ns_per_call(contenders, args)
    iris_ns = peers.pop("iris")
    return [{
        "scenario": "scalar call (x*x+y*y+z*z)**0.5",
        "unit": "ns",
        "higher_is_better": False,
        "iris": iris_ns,
        "peers": peers,
        "target": {"ratio": round(1 / 1.5, 4), "against": "empty python fn"},
    }]


# ---------------------------------------------------------------------------------------------
# reductions over 10M f64


@iris.offload(fastmath=True)
def sum_sq_fast(x):
    return sum(x * x)


@iris.offload()
def sum_sq2_exact(x, y):
    return sum(x * x + y * y)


@iris.offload(fastmath=True)
def sum_sq2_fast(x, y):
    return sum(x * x + y * y)


def python_loop_sq2(x, y):
    s = 0
    for a, b in zip(x, y):
        s += a * a + b * b
    return s


def inputs():
    if np is not None:
        rng = np.random.default_rng(7)
        return rng.random(N), rng.random(N)
    x = array("d", ((i % 1000) * 0.001 for i in range(N)))
    y = array("d", ((i % 777) * 0.002 for i in range(N)))
    return x, y


def reduction_rows() -> List[Dict[str, Any]]:
    x, y = inputs()
    for f in (sum_sq_fast, sum_sq2_exact, sum_sq2_fast):
        assert jit.compiled(f) is not None, f.__name__
    b1, b2 = 8 * N, 16 * N
    small = 200_000 if QUICK else 1_000_000
    xs, ys = list(x[:small]), list(y[:small])
    py_gbps = gbps(16 * small, best_seconds(lambda: python_loop_sq2(xs, ys), 1 if QUICK else 3))
    exact = sum_sq2_exact(x, y)
    if np is not None:
        # exact mode is Python's own sum over the array's elements, bit for bit
        want = python_loop_sq2(x[:small], y[:small])
        assert sum_sq2_exact(x[:small], y[:small]) == want
        assert abs(sum_sq2_fast(x, y) - exact) <= 1e-9 * abs(exact)

    contenders: Dict[str, Tuple[Callable[[], Any], int]] = {
        "iris sum(x*x) fastmath": (lambda: sum_sq_fast(x), b1),
        "iris fastmath": (lambda: sum_sq2_fast(x, y), b2),
        "iris exact": (lambda: sum_sq2_exact(x, y), b2),
    }
    if np is not None:
        contenders["np.dot"] = (lambda: np.dot(x, x), b1)
        contenders["numpy"] = (lambda: (x * x + y * y).sum(), b2)
    if numba is not None:
        @numba.njit
        def loop_sq2(x, y):
            s = 0.0
            for i in range(x.shape[0]):
                s += x[i] * x[i] + y[i] * y[i]
            return s

        contenders["numba loop"] = (lambda: loop_sq2(x, y), b2)
    speed = gbps_interleaved(contenders)
    sq_peers = {k: speed[k] for k in ("np.dot",) if k in speed}
    sq2_peers = {"python loop": py_gbps}
    sq2_peers.update({k: speed[k] for k in ("numpy", "numba loop") if k in speed})
    rows = [{
        "scenario": "sum(x*x) 10M f64, fastmath",
        "unit": "GB/s",
        "higher_is_better": True,
        "iris": speed["iris sum(x*x) fastmath"],
        "peers": sq_peers,
        "target": {"ratio": 0.5, "against": "np.dot"},
    }, {
        "scenario": "sum(x*x + y*y) 10M f64, fastmath",
        "unit": "GB/s",
        "higher_is_better": True,
        "iris": speed["iris fastmath"],
        "peers": dict(sq2_peers),
        "target": {"ratio": 2.0, "against": "numpy"},
    }, {
        "scenario": "sum(x*x + y*y) 10M f64, exact",
        "unit": "GB/s",
        "higher_is_better": True,
        "iris": speed["iris exact"],
        "peers": dict(sq2_peers),
        "target": {"ratio": 1.0, "against": "numba loop"},
    }]
    for r in rows:
        if r["target"]["against"] not in r["peers"]:
            del r["target"]
    return rows


# ---------------------------------------------------------------------------------------------


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def verdict(row: Dict[str, Any]) -> str:
    target = row.get("target")
    if not target:
        return ""
    peer = row["peers"].get(target["against"])
    if peer is None:
        return "no baseline"
    speed = row["iris"] / peer if row["higher_is_better"] else peer / row["iris"]
    ok = speed >= target["ratio"] * 0.9999
    return f"{speed:.2f}x {target['against']} (want {target['ratio']:g}x): " + (
        "met" if ok else "MISSED")


def main() -> None:
    print(f"python {sys.version.split()[0]}, numpy {getattr(np, '__version__', '-')}, "
          f"numba {getattr(numba, '__version__', '-')}, {os.cpu_count()} cpus", file=sys.stderr)
    rows = compile_rows() + scalar_rows() + reduction_rows()
    for r in rows:
        peers = ", ".join(f"{k} {fmt(v)}" for k, v in r["peers"].items())
        print(f"{r['scenario']:<40} {r['unit']:>5}  iris {fmt(r['iris']):>8}  | {peers}  "
              f"| {verdict(r)}")
    out = os.environ.get("IRIS_BENCH_OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "python_jit.json"), "w") as f:
            json.dump({"suite": "python-jit", "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
