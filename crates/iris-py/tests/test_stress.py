"""Stress: many push actors, one actor flooded, many pull actors blocked at once, release_gil
actors under concurrent senders, swaps and stops.

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


def test_release_gil_actors_under_many_senders_keep_order_swaps_and_stops(rt, until):
    # 40 release_gil actors (10 of them in a 2-slot shared pool), 4 sender threads, handlers
    # that sometimes block (releasing the interpreter), hot swaps and stops while messages
    # flow: each actor sees each sender's messages in order, one call at a time, and a
    # stopped actor's later sends fail.
    import random

    rt.set_release_gil_limits(30, 2)
    senders, per_sender = 4, 150
    lock = threading.Lock()
    seen: dict = {}
    busy: dict = {}
    overlaps = []

    def make(tag):
        def handler(msg):
            me = iris.current_pid()
            with lock:
                if busy.get(me):
                    overlaps.append(me)
                busy[me] = True
            if msg[-1] % 17 == 0:
                time.sleep(0.0005)
            sender, seq = msg[0], int.from_bytes(msg[1:3], "big")
            with lock:
                seen.setdefault(me, []).append((sender, seq, tag))
                busy[me] = False

        return handler

    pids = [rt.spawn(make("a"), budget=random.choice([1, 7, 100]), release_gil=True)
            for _ in range(40)]
    stopped = set(random.sample(pids, 5))

    def send_all(sender):
        rng = random.Random(sender)
        for seq in range(per_sender):
            for pid in rng.sample(pids, len(pids)):
                rt.send(pid, bytes([sender]) + seq.to_bytes(2, "big") + bytes([rng.randrange(256)]))

    threads = [threading.Thread(target=send_all, args=(s,)) for s in range(senders)]
    for t in threads:
        t.start()
    for pid in random.sample(pids, 10):
        rt.hot_swap(pid, make("b"))
    for pid in stopped:
        rt.stop(pid)
    for t in threads:
        t.join()
    live = [p for p in pids if p not in stopped]
    assert until(lambda: all(len(seen.get(p, [])) == senders * per_sender for p in live),
                 timeout=60, step=0.01)
    for pid in stopped:
        assert rt.join(pid, timeout=10).reason == "Killed"
        assert rt.send(pid, b"late") is False
    assert overlaps == []
    for pid in pids:
        by_sender: dict = {}
        for sender, seq, _tag in seen.get(pid, []):
            by_sender.setdefault(sender, []).append(seq)
        for seqs in by_sender.values():
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        tags = [tag for _s, _q, tag in seen.get(pid, [])]
        # After a swap every message uses the new handler: no "a" after the first "b".
        if "b" in tags:
            assert "a" not in tags[tags.index("b"):]
