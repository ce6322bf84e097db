"""Iris against the field, from Python: the same scenarios for Iris, asyncio, uvloop,
threading and pykka, each handler a plain Python function doing the same work.

Scenarios (every system runs the same driver code through a small adapter):

- ``spawn_idle``: spawn N idle actors; actors/s, and bytes of RSS per actor.
- ``fanout``: N (already spawned) actors get one message each; messages processed per second
  until the last handler ran.
- ``sink``: one actor handles N fire-and-forget messages from one sender (the plain
  ``send`` loop); processed/s.
- ``pingpong``: N request/response round trips between two actors; round trips/s.
- ``skynet``: N leaf actors in a 10-ary tree sum their numbers; ms.

An actor is: Iris ``rt.spawn(handler)``; asyncio/uvloop a task draining an ``asyncio.Queue``;
threading a thread draining a ``queue.SimpleQueue``; pykka a ``ThreadingActor``. One OS
thread per actor makes threading infeasible for 100k-1M actors (reported as such) and pykka
slow (it runs smaller sizes, named in its column). Each (system, scenario) runs in a fresh
subprocess, so RSS (from /proc/self/statm) and allocator state do not leak between them.

``IRIS_BENCH_QUICK=1`` shrinks the sizes; ``IRIS_BENCH_OUT=dir`` writes
``dir/python_actors.json``; ``IRIS_BENCH_ONLY=sink,pingpong`` runs some scenarios only;
``IRIS_BENCH_REPEAT=k`` runs every measurement k times and keeps the best (default 3, quick 1).
``python scenarios.py --one SYSTEM SCENARIO N`` runs one measurement and prints it as JSON.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

QUICK = os.environ.get("IRIS_BENCH_QUICK") == "1"
REPEAT = int(os.environ.get("IRIS_BENCH_REPEAT", "1" if QUICK else "3"))
TIMEOUT = 600.0  # seconds a single measurement may take before it counts as failed

# Full and quick sizes; pykka (a thread per actor, a lock-based queue per message) runs the
# smaller ones given here and its column names the size.
SIZES = {
    "spawn_idle": (100_000, 10_000),
    "fanout": (100_000, 10_000),
    "sink": (1_000_000, 100_000),
    "pingpong": (200_000, 20_000),
    "skynet": (1_000_000, 100_000),
}
PYKKA_SIZES = {
    "spawn_idle": 2_000,
    "fanout": 2_000,
    "sink": 100_000,
    "pingpong": 20_000,
    "skynet": 1_000,
}
# Scenarios a thread per actor cannot run at these sizes.
THREAD_PER_ACTOR_INFEASIBLE = {"spawn_idle", "fanout", "skynet"}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ----- systems: spawn(handler) -> address, send(address, msg), done() -> (signal, wait) -----


class IrisSystem:
    name = "iris"

    def __init__(self) -> None:
        import iris

        self.rt = iris.Runtime()
        self.STOP = iris.STOP
        self.spawn = self.rt.spawn
        self.send = self.rt.send

    def settle(self) -> None:
        pass

    def done(self) -> Tuple[Callable[[], None], Callable[[], None]]:
        ev = threading.Event()

        def wait() -> None:
            if not ev.wait(TIMEOUT):
                raise TimeoutError("the last handler never ran")

        return ev.set, wait



class AsyncioSystem:
    """A task per actor, draining its own asyncio.Queue; the driver runs the loop."""

    name = "asyncio"

    def __init__(self) -> None:
        self.loop = self.new_loop()
        asyncio.set_event_loop(self.loop)
        self.STOP = object()
        stop = self.STOP
        create_task = self.loop.create_task
        Queue = asyncio.Queue

        async def actor(q: "asyncio.Queue[Any]", handler: Callable[[Any], Any]) -> None:
            get = q.get
            while True:
                if handler(await get()) is stop:
                    return

        def spawn(handler: Callable[[Any], Any]) -> "asyncio.Queue[Any]":
            q: "asyncio.Queue[Any]" = Queue()
            create_task(actor(q, handler))
            return q

        self.spawn = spawn
        self.send = Queue.put_nowait

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def settle(self) -> None:
        # Lets every new task start and block in `get`.
        self.loop.run_until_complete(asyncio.sleep(0))

    def done(self) -> Tuple[Callable[[], None], Callable[[], None]]:
        fut = self.loop.create_future()

        def signal() -> None:
            fut.set_result(None)

        def wait() -> None:
            self.loop.run_until_complete(asyncio.wait_for(fut, TIMEOUT))

        return signal, wait



class UvloopSystem(AsyncioSystem):
    name = "uvloop"

    def new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        return uvloop.new_event_loop()


class ThreadingSystem:
    """A thread per actor, draining its own queue.SimpleQueue."""

    name = "threading"

    def __init__(self) -> None:
        self.STOP = object()
        stop = self.STOP
        self.threads: List[threading.Thread] = []

        def actor(q: "queue.SimpleQueue[Any]", handler: Callable[[Any], Any]) -> None:
            get = q.get
            while True:
                if handler(get()) is stop:
                    return

        def spawn(handler: Callable[[Any], Any]) -> "queue.SimpleQueue[Any]":
            q: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
            t = threading.Thread(target=actor, args=(q, handler), daemon=True)
            t.start()
            self.threads.append(t)
            return q

        self.spawn = spawn
        self.send = queue.SimpleQueue.put

    settle = IrisSystem.settle
    done = IrisSystem.done



class PykkaSystem:
    """A pykka ThreadingActor per actor; `send` is `tell`."""

    name = "pykka"

    def __init__(self) -> None:
        import pykka

        self.pykka = pykka
        self.STOP = object()
        stop = self.STOP

        class Actor(pykka.ThreadingActor):  # type: ignore[misc]
            def __init__(self, handler: Callable[[Any], Any]) -> None:
                super().__init__()
                self.handler = handler

            def on_receive(self, message: Any) -> None:
                if self.handler(message) is stop:
                    self.stop()

        self.spawn = Actor.start
        self.send = pykka.ActorRef.tell

    settle = IrisSystem.settle
    done = IrisSystem.done



SYSTEMS = {
    s.name: s for s in (IrisSystem, AsyncioSystem, UvloopSystem, ThreadingSystem, PykkaSystem)
}


# ----- scenarios: the same driver and handlers for every system ------------------------------


def counting_handler(n: int, signal: Callable[[], None]) -> Callable[[Any], None]:
    """The handler of fanout and sink: counts, and signals at the n-th message."""
    count = itertools.count(1).__next__

    def handler(msg: Any) -> None:
        if count() == n:
            signal()

    return handler


def spawn_idle(s: Any, n: int) -> Dict[str, float]:
    def idle(msg: Any) -> None:
        pass

    spawn = s.spawn
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    addrs = [spawn(idle) for _ in range(n)]
    s.settle()
    took = time.perf_counter() - start
    gc.collect()
    per_actor = (rss_bytes() - before) / n
    del addrs
    return {"value": n / took, "rss_per_actor": per_actor}


def fanout(s: Any, n: int) -> Dict[str, float]:
    signal, wait = s.done()
    handler = counting_handler(n, signal)
    spawn, send = s.spawn, s.send
    addrs = [spawn(handler) for _ in range(n)]
    s.settle()
    start = time.perf_counter()
    for a in addrs:
        send(a, b"m")
    wait()
    return {"value": n / (time.perf_counter() - start)}


def sink(s: Any, n: int, **spawn_kw: Any) -> Dict[str, float]:
    signal, wait = s.done()
    addr = s.spawn(counting_handler(n, signal), **spawn_kw)
    s.settle()
    send = s.send
    start = time.perf_counter()
    for _ in range(n):
        send(addr, b"x")
    wait()
    return {"value": n / (time.perf_counter() - start)}


def pingpong(s: Any, n: int) -> Dict[str, float]:
    signal, wait = s.done()
    send = s.send
    peer: List[Any] = [None, None]
    trips = itertools.count(1).__next__

    def pinger(msg: Any) -> None:
        if trips() == n:
            signal()
        else:
            send(peer[1], b"ping")

    def ponger(msg: Any) -> None:
        send(peer[0], b"pong")

    peer[0] = s.spawn(pinger)
    peer[1] = s.spawn(ponger)
    s.settle()
    start = time.perf_counter()
    send(peer[1], b"ping")
    wait()
    return {"value": n / (time.perf_counter() - start)}


def skynet(s: Any, n: int) -> Dict[str, float]:
    """N leaves in a 10-ary tree; each leaf sends its number to its parent, each inner node
    the sum of its ten children. A parent puts a child's address in the child's `me` cell
    before sending it `go`, so the child can be the parent of the children it spawns."""
    signal, wait = s.done()
    spawn, send, STOP = s.spawn, s.send, s.STOP
    result: List[int] = []

    def root(msg: Any) -> Any:
        result.append(int(msg))
        signal()
        return STOP

    def start_child(parent: Any, num: int, size: int) -> None:
        me: List[Any] = []
        child = spawn(node(me, parent, num, size))
        me.append(child)
        send(child, b"go")

    def node(me: List[Any], parent: Any, num: int, size: int) -> Callable[[Any], Any]:
        if size == 1:

            def leaf(msg: Any) -> Any:
                send(parent, b"%d" % num)
                return STOP

            return leaf
        acc = [0, -1]
        step = size // 10

        def inner(msg: Any) -> Any:
            if acc[1] < 0:
                for i in range(10):
                    start_child(me[0], num + i * step, step)
                acc[1] = 0
                return None
            acc[0] += int(msg)
            acc[1] += 1
            if acc[1] == 10:
                send(parent, b"%d" % acc[0])
                return STOP
            return None

        return inner

    start = time.perf_counter()
    start_child(spawn(root), 0, n)
    wait()
    took = time.perf_counter() - start
    expected = n * (n - 1) // 2
    if result != [expected]:
        raise AssertionError(f"skynet summed {result}, expected {expected}")
    return {"value": took * 1000.0}


def iris_send_many(s: Any, n: int) -> Dict[str, float]:
    """The sink with `rt.send_many(pid, batch)` in batches of 1000 (an Iris-only API)."""
    signal, wait = s.done()
    addr = s.spawn(counting_handler(n, signal))
    batch = [b"x"] * 1000
    send_many = s.rt.send_many
    start = time.perf_counter()
    for _ in range(n // len(batch)):
        send_many(addr, batch)
    wait()
    return {"value": n / (time.perf_counter() - start)}


def iris_pull_sink(s: Any, n: int) -> Dict[str, float]:
    """The sink into a pull actor: a thread in `mailbox.recv()`, like the threading peer."""
    signal, wait = s.done()
    handler = counting_handler(n, signal)

    def body(mailbox: Any) -> None:
        recv = mailbox.recv
        for _ in range(n):
            handler(recv())

    pid = s.rt.spawn_with_mailbox(body)
    send = s.send
    start = time.perf_counter()
    for _ in range(n):
        send(pid, b"x")
    wait()
    return {"value": n / (time.perf_counter() - start)}


MESH_COOKIE = "iris-bench-mesh"


def mesh_node() -> None:
    """The far side of the mesh scenarios, in a process of its own: prints its address, reads
    the near node's address and N, then serves `sink` (prints `done` after N messages) and
    `ponger` (answers every message to the near node's `pinger`)."""
    import iris

    rt = iris.Runtime()
    print(rt.listen("127.0.0.1:0"), flush=True)
    near, n = sys.stdin.readline().split()
    rt.register("sink", rt.spawn(counting_handler(int(n), lambda: print("done", flush=True))))
    pinger = rt.resolve_remote(near, "pinger")
    send = rt.send
    rt.register("ponger", rt.spawn(lambda msg: send(pinger, b"pong")))
    print("ready", flush=True)
    sys.stdin.readline()  # until the near node has finished with us
    os._exit(0)


def mesh(s: Any, n: int, pingpong: bool) -> Dict[str, float]:
    """Sink or ping-pong between this process and a `mesh_node` over loopback TCP: messages
    go to local proxies of the far actors (`resolve_remote`)."""
    os.environ["IRIS_COOKIE"] = MESH_COOKIE
    rt = s.rt
    signal, wait = s.done()
    send = rt.send
    ponger: List[Any] = []
    trips = itertools.count(1).__next__

    def pinger(msg: Any) -> None:
        if trips() == n:
            signal()
        else:
            send(ponger[0], b"ping")

    rt.register("pinger", rt.spawn(pinger))
    addr = rt.listen("127.0.0.1:0")
    node = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--mesh-node"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, IRIS_COOKIE=MESH_COOKIE),
    )
    assert node.stdin is not None and node.stdout is not None
    far = node.stdout.readline().strip()
    node.stdin.write(f"{addr} {n}\n")
    node.stdin.flush()
    assert node.stdout.readline().strip() == "ready"
    ponger.append(rt.resolve_remote(far, "ponger"))
    sink_pid = rt.resolve_remote(far, "sink")
    if pingpong:
        start = time.perf_counter()
        send(ponger[0], b"ping")
        wait()
    else:
        start = time.perf_counter()
        for _ in range(n):
            send(sink_pid, b"x")
        assert node.stdout.readline().strip() == "done"
    took = time.perf_counter() - start
    node.stdin.close()
    node.wait(timeout=30)
    return {"value": n / took}


SCENARIOS: Dict[str, Callable[..., Dict[str, float]]] = {
    "spawn_idle": spawn_idle,
    "fanout": fanout,
    "sink": sink,
    "pingpong": pingpong,
    "skynet": skynet,
    "sink_send_many": iris_send_many,
    "sink_release_gil": lambda s, n: sink(s, n, release_gil=True),
    "sink_pull": iris_pull_sink,
    "mesh_sink": lambda s, n: mesh(s, n, pingpong=False),
    "mesh_pingpong": lambda s, n: mesh(s, n, pingpong=True),
}


def run_one(system: str, scenario: str, n: int) -> None:
    """Prints one measurement as JSON, then exits at once: tearing down 100k-1M actors (or
    pykka's non-daemon threads) is not part of any scenario."""
    s = SYSTEMS[system]()
    result = SCENARIOS[scenario](s, n)
    print(json.dumps(result), flush=True)
    os._exit(0)


# ----- the parent: a subprocess per measurement, a table and the JSON ------------------------


def measure(system: str, scenario: str, n: int) -> Optional[Dict[str, float]]:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", system, scenario, str(n)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"  {system} {scenario} n={n}: timed out", file=sys.stderr)
        return None
    if p.returncode != 0:
        print(f"  {system} {scenario} n={n} failed:\n{p.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def available(system: str) -> bool:
    mod = {"uvloop": "uvloop", "pykka": "pykka"}.get(system)
    if mod is None:
        return True
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


ROWS = [
    # scenario, unit, higher is better, measurement key, target (ratio, against)
    ("spawn_idle", "actors/s", True, "value", (10.0, "asyncio")),
    ("spawn_idle", "bytes/actor", False, "rss_per_actor", None),
    ("fanout", "msg/s", True, "value", (10.0, "asyncio")),
    ("sink", "msg/s", True, "value", (1.0, "threading")),
    ("pingpong", "round trips/s", True, "value", (2.0, "uvloop")),
    ("skynet", "ms", False, "value", None),
]
# Iris-only variants of the sink, shown against the threading sink of the same run.
# Iris-only rows: (scenario, label, unit, sizes (full, quick), the ONLY group that selects
# it, the threading row shown beside it).
IRIS_EXTRA = [
    ("sink_send_many", "sink (send_many x1000)", "msg/s", SIZES["sink"], "sink", "sink"),
    ("sink_release_gil", "sink (release_gil=True)", "msg/s", SIZES["sink"], "sink", "sink"),
    ("sink_pull", "sink (pull actor)", "msg/s", SIZES["sink"], "sink", "sink"),
    ("mesh_sink", "mesh sink (2 processes)", "msg/s", SIZES["sink"], "mesh", None),
    ("mesh_pingpong", "mesh pingpong (2 processes)", "round trips/s", (20_000, 2_000), "mesh", None),
]
PEERS = ["asyncio", "uvloop", "threading", "pykka"]
SPAWN_RSS_LIMIT = 1024  # bytes per idle actor, the target for Iris


def size(scenario: str, system: str = "iris") -> int:
    if system == "pykka":
        n = PYKKA_SIZES[scenario]
        return n if not QUICK or scenario == "skynet" else max(n // 10, 100)
    full, quick = SIZES[scenario]
    return quick if QUICK else full


def best(
    scenario: str, a: Optional[Dict[str, float]], b: Optional[Dict[str, float]]
) -> Optional[Dict[str, float]]:
    """The better of two runs (the faster; for spawn_idle also the smaller RSS)."""
    if a is None or b is None:
        return a or b
    lower = scenario == "skynet"
    out = {"value": min(a["value"], b["value"]) if lower else max(a["value"], b["value"])}
    if "rss_per_actor" in a:
        out["rss_per_actor"] = min(a["rss_per_actor"], b["rss_per_actor"])
    return out


def main() -> None:
    only = os.environ.get("IRIS_BENCH_ONLY")
    wanted = set(only.split(",")) if only else None
    scenarios = [sc for sc in SIZES if wanted is None or sc in wanted]
    notes: List[str] = []
    jobs: List[Tuple[str, str, int]] = []
    for system in ["iris"] + PEERS:
        if not available(system):
            notes.append(f"{system}: not installed")
            continue
        for sc in scenarios:
            if system == "threading" and sc in THREAD_PER_ACTOR_INFEASIBLE:
                continue
            jobs.append((system, sc, size(sc, system)))
    for sc, _, _, (full, quick), group, _ in IRIS_EXTRA:
        if wanted is None or group in wanted or sc in wanted:
            jobs.append(("iris", sc, quick if QUICK else full))
    sizes = {(system, sc): n for system, sc, n in jobs}
    # Rounds over every job, best result per job: the machine is shared, so noise only ever
    # slows a run down. The slow skynet peers run once.
    results: Dict[Tuple[str, str], Optional[Dict[str, float]]] = {}
    for rnd in range(REPEAT):
        for system, sc, n in jobs:
            if rnd > 0 and sc == "skynet" and system != "iris":
                continue
            print(f"[{rnd + 1}/{REPEAT}] {system} {sc} n={n:,}", file=sys.stderr)
            r = measure(system, sc, n)
            results[(system, sc)] = best(sc, results.get((system, sc)), r)
    notes.append(
        "threading: " + ", ".join(sorted(THREAD_PER_ACTOR_INFEASIBLE))
        + " infeasible (one OS thread per actor at 100k-1M actors)"
    )

    rows: List[Dict[str, Any]] = []
    for sc, unit, higher, key, target in ROWS:
        if sc not in scenarios:
            continue
        iris_r = results.get(("iris", sc))
        row: Dict[str, Any] = {
            "scenario": sc if key == "value" else f"{sc}_rss",
            "unit": unit,
            "higher_is_better": higher,
            "iris": iris_r[key] if iris_r else None,
            "peers": {},
        }
        for system in PEERS:
            r = results.get((system, sc))
            if r is not None:
                label = f"pykka (n={sizes[(system, sc)]:,})" if system == "pykka" else system
                row["peers"][label] = r[key]
        if target is not None:
            row["target"] = {"ratio": target[0], "against": target[1]}
        rows.append(row)
    for sc, label, unit, _, _, beside in IRIS_EXTRA:
        if ("iris", sc) not in results:
            continue
        r = results[("iris", sc)]
        peer = results.get(("threading", beside)) if beside else None
        rows.append(
            {
                "scenario": label,
                "unit": unit,
                "higher_is_better": True,
                "iris": r["value"] if r else None,
                "peers": {"threading": peer["value"]} if peer else {},
            }
        )
    print_table(rows, notes)
    out = os.environ.get("IRIS_BENCH_OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "python_actors.json"), "w") as f:
            json.dump({"suite": "python", "rows": rows}, f, indent=2)


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def verdict(row: Dict[str, Any]) -> str:
    iris_v = row["iris"]
    if row["scenario"] == "spawn_idle_rss" and iris_v is not None:
        ok = iris_v <= SPAWN_RSS_LIMIT
        return f"<= {SPAWN_RSS_LIMIT} B: {'met' if ok else 'MISSED'}"
    target = row.get("target")
    if not target or iris_v is None:
        return ""
    peer = row["peers"].get(target["against"])
    if peer is None:
        return f"{target['ratio']:g}x {target['against']}: no baseline"
    ratio = iris_v / peer if row["higher_is_better"] else peer / iris_v
    ok = ratio >= target["ratio"]
    return f"{ratio:.2f}x {target['against']} (want {target['ratio']:g}x): " + (
        "met" if ok else "MISSED"
    )


def print_table(rows: List[Dict[str, Any]], notes: List[str]) -> None:
    peers: List[str] = []
    for r in rows:
        for p in r["peers"]:
            if p not in peers and not p.startswith("pykka"):
                peers.append(p)
    cols = ["scenario", "unit", "iris"] + peers + ["pykka", "target"]
    table = [cols]
    for r in rows:
        pykka = [f"{fmt(v)} ({k[7:-1]})" for k, v in r["peers"].items() if k.startswith("pykka")]
        table.append(
            [r["scenario"], r["unit"], fmt(r["iris"])]
            + [fmt(r["peers"].get(p)) for p in peers]
            + [pykka[0] if pykka else "-", verdict(r)]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j < 2 or j == len(cols) - 1 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for n in notes:
        print(f"note: {n}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--mesh-node"]:
        mesh_node()
    elif len(sys.argv) == 5 and sys.argv[1] == "--one":
        run_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
