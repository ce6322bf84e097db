"""A short tour of Iris from Python: run with `python crates/iris-py/examples/tour.py`."""

from __future__ import annotations

import threading
import time

import iris


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def main() -> None:
    print(f"iris {iris.version()}")
    with iris.Runtime() as rt:
        # 1. A push actor: one handler call per message, in order; STOP ends it.
        seen = []

        def greeter(msg):
            if msg == b"quit":
                return iris.STOP
            seen.append(msg.decode())

        pid = rt.spawn(greeter, budget=50)
        for word in ("hello", "actor", "world"):
            rt.send(pid, word.encode())
        rt.send(pid, b"quit")
        info = rt.join(pid, timeout=5)
        print(f"[push]      pid {pid} handled {seen} and exited: {info}")

        # 2. A crash: the exception ends only that actor, with its traceback.
        def fragile(msg):
            raise ValueError(f"cannot handle {msg!r}")

        bad = rt.spawn(fragile)
        rt.send(bad, b"poison")
        info = rt.join(bad, timeout=5)
        last = info.metadata.strip().splitlines()[-1]
        print(f"[crash]     pid {bad} exited with reason={info.reason!r}: {last}")

        # 3. A pull actor blocks in recv() on its own thread with the GIL released.
        def saga(mailbox):
            first = mailbox.recv()
            confirm = mailbox.recv(timeout=0.2)
            print(f"[pull]      got {first!r}, then {'confirmation' if confirm else 'a timeout'}")

        saga_pid = rt.spawn_with_mailbox(saga)
        rt.send(saga_pid, b"start saga")
        rt.join(saga_pid, timeout=5)

        # 4. Children stop with their parent.
        parent = rt.spawn(lambda m: iris.STOP if m == b"quit" else None)
        kids = iris.spawn_child_pool(rt, parent, size=3)
        rt.send(parent, b"quit")
        reasons = [rt.join(k, timeout=5).reason for k in kids]
        print(f"[children]  parent quit; its pool of {len(kids)} exited with {reasons}")

        # 5. Bounded mailboxes and overflow policies.
        started, release = threading.Event(), threading.Event()

        def slow_handler(msg):
            started.set()
            release.wait(5)

        slow = rt.spawn_py_handler_bounded(slow_handler, budget=100, capacity=2)
        rt.send(slow, b"job0")
        started.wait(5)  # job0 is being handled; the mailbox holds the next two
        results = [rt.send(slow, f"job{i}".encode()) for i in range(1, 4)]
        print(f"[bounded]   capacity 2, dropnew: sends returned {results}")
        fallback_got = []
        fallback = rt.spawn(fallback_got.append)
        rt.set_overflow_policy(slow, "redirect", fallback)
        rt.send(slow, b"overflow")
        wait_for(lambda: fallback_got)
        print(f"[bounded]   redirect: the fallback actor got {fallback_got}")
        release.set()

        # 6. Hot swap, with history and rollback.
        log = []
        worker = rt.spawn(lambda m: log.append("v1"))
        rt.send(worker, b"x")
        wait_for(lambda: len(log) == 1)
        version = rt.hot_swap(worker, lambda m: log.append("v2"))
        rt.send(worker, b"x")
        wait_for(lambda: len(log) == 2)
        back = rt.rollback_behavior(worker)
        rt.send(worker, b"x")
        wait_for(lambda: len(log) == 3)
        print(f"[hot swap]  swapped to version {version}, rolled back to {back}: ran {log}")

        # 7. Names, monitors and supervision with a restart factory.
        observer = rt.spawn_observed_handler()
        flaky = rt.spawn(lambda m: 1 / 0)
        rt.register("flaky", flaky)
        rt.monitor(observer, flaky)

        def restart():
            new = rt.spawn(lambda m: 1 / 0)
            rt.register("flaky", new)
            return new

        rt.supervise_with_factory(flaky, restart, "restartone")
        rt.send_named("flaky", b"boom")
        wait_for(lambda: rt.whereis("flaky") not in (None, flaky))
        (down,) = rt.get_messages(observer)
        print(f"[supervise] {down.type_name} from {down.from_pid} ({down.reason}); "
              f"restarted as pid {rt.whereis('flaky')}")

        # 8. Timers.
        ticks = []
        ticker = rt.spawn(ticks.append)
        timer = rt.send_interval(ticker, 20, b"tick")
        wait_for(lambda: len(ticks) >= 3)
        rt.cancel_timer(timer)
        print(f"[timers]    got {len(ticks)} ticks, then cancelled")

        # 9. The mesh: a second node on loopback; the remote actor is reached through a local
        #    proxy PID, and its crash is seen here as its proxy's exit reason.
        with iris.Runtime() as node_b:
            got = []

            def auth(msg):
                if msg == b"crash":
                    raise RuntimeError("remote failure")
                got.append(msg)

            worker = node_b.spawn(auth)
            node_b.register("auth_worker", worker)
            addr = node_b.listen("127.0.0.1:0")
            proxy = rt.resolve_remote(addr, "auth_worker")
            rt.send(proxy, b"login")
            wait_for(lambda: got == [b"login"])
            print(f"[mesh]      node B on {addr} got {got} through proxy pid {proxy}")
            watched = rt.monitor_remote(addr, worker)
            rt.send(watched, b"crash")
            info = rt.join(watched, timeout=5.0)
            print(f"[mesh]      the remote actor crashed; its proxy exited with {info.reason}")

        # 10. JIT offload: the function body is compiled by Cranelift and runs natively.
        @iris.offload(strategy="jit", return_type="float")
        def vector_magnitude(x: float, y: float, z: float) -> float:
            return (x * x + y * y + z * z) ** 0.5

        @iris.offload(strategy="actor", return_type="float")
        def sum_of_squares(n: int) -> float:
            return sum(i * i for i in range(n))

        print(f"[jit]       vector_magnitude(1.0, 2.0, 3.0) = {vector_magnitude(1.0, 2.0, 3.0)}")
        print(f"[jit]       sum_of_squares(1000) = {sum_of_squares(1000)} (actor strategy)")
    print("done: leaving the `with` block shut the runtime down")


if __name__ == "__main__":
    main()
