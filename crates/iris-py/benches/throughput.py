"""Python-side throughput of Iris: push actors, one flooded actor, pull actors.

Run by `cargo xtask bench` (IRIS_BENCH_QUICK=1 shrinks the sizes; results go to
$IRIS_BENCH_OUT/py_throughput.json when set).
"""

from __future__ import annotations

import json
import os
import threading
import time

import iris

QUICK = os.environ.get("IRIS_BENCH_QUICK") == "1"


def wait(cond, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish")
        time.sleep(0.001)


def many_actors(rt, n):
    count = [0]

    def handler(msg):
        count[0] += 1

    start = time.perf_counter()
    pids = [rt.spawn(handler) for _ in range(n)]
    for p in pids:
        rt.send(p, b"m")
    wait(lambda: count[0] == n)
    return n / (time.perf_counter() - start)


def one_actor(rt, n, release_gil=False):
    count = [0]

    def handler(msg):
        count[0] += 1

    pid = rt.spawn(handler, budget=1000, release_gil=release_gil)
    start = time.perf_counter()
    for _ in range(n):
        rt.send(pid, b"x")
    wait(lambda: count[0] == n)
    return n / (time.perf_counter() - start)


def pull_actors(rt, actors, per_actor):
    done = [0]
    lock = threading.Lock()

    def handler(mailbox):
        for _ in range(per_actor):
            mailbox.recv()
        with lock:
            done[0] += 1

    pids = [rt.spawn_with_mailbox(handler) for _ in range(actors)]
    start = time.perf_counter()
    for _ in range(per_actor):
        for p in pids:
            rt.send(p, b"x")
    wait(lambda: done[0] == actors)
    return actors * per_actor / (time.perf_counter() - start)


def main():
    scale = 10 if QUICK else 1
    results = {}
    with iris.Runtime() as rt:
        results["push_actors_per_s"] = many_actors(rt, 100_000 // scale)
        results["one_actor_msgs_per_s"] = one_actor(rt, 1_000_000 // scale)
        results["release_gil_msgs_per_s"] = one_actor(rt, 100_000 // scale, release_gil=True)
        results["pull_msgs_per_s"] = pull_actors(rt, 100, 1000 // scale)
    for k, v in results.items():
        print(f"{k:>26}: {v:,.0f}")
    out = os.environ.get("IRIS_BENCH_OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "py_throughput.json"), "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
