"""Stress: many push actors, one actor flooded, many pull actors blocked at once.

Counts happen in the handlers; the main thread polls with a deadline. Rates are printed
(run with -s to see them).
"""

from __future__ import annotations

import threading
import time

import iris


def test_100k_push_actors_each_handle_one_message(rt, until):
    n = 100_000
    count = [0]

    def handler(msg):
        count[0] += 1

    start = time.perf_counter()
    pids = [rt.spawn(handler) for _ in range(n)]
    for pid in pids:
        assert rt.send(pid, b"m")
    assert until(lambda: count[0] == n, timeout=60, step=0.01)
    took = time.perf_counter() - start
    print(f"\n100k push actors, one message each: {took:.2f} s ({n / took:,.0f} actors/s)")
    assert count[0] == n


def test_one_actor_handles_a_million_messages(rt, until):
    n = 1_000_000
    count = [0]

    def handler(msg):
        count[0] += 1

    pid = rt.spawn(handler, budget=1000)
    send = rt.send
    start = time.perf_counter()
    for _ in range(n):
        send(pid, b"x")
    sent = time.perf_counter() - start
    assert until(lambda: count[0] == n, timeout=60, step=0.01)
    took = time.perf_counter() - start
    print(
        f"\n1M messages to one actor: sent in {sent:.2f} s, handled in {took:.2f} s "
        f"({n / took:,.0f} msg/s)"
    )
    assert rt.mailbox_size(pid) == 0


def test_1000_pull_actors_block_in_recv_at_once(rt, until):
    n = 1000
    waiting = [0]
    done = [0]
    lock = threading.Lock()

    def handler(mailbox):
        with lock:
            waiting[0] += 1
        msg = mailbox.recv()
        assert msg == b"go"
        with lock:
            done[0] += 1

    start = time.perf_counter()
    pids = [rt.spawn_with_mailbox(handler) for _ in range(n)]
    assert until(lambda: waiting[0] == n, timeout=60, step=0.01)
    assert done[0] == 0
    assert all(rt.is_alive(p) for p in pids)
    for p in pids:
        assert rt.send(p, b"go")
    assert until(lambda: done[0] == n, timeout=60, step=0.01)
    for p in pids:
        assert rt.join(p, timeout=10).reason == "Normal"
    print(f"\n1000 pull actors blocked and released: {time.perf_counter() - start:.2f} s")
