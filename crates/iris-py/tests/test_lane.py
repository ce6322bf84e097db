"""Sends from Python to a busy Python push actor go through its interpreter lane; these
tests hold the actor busy so that they do, and check that the lane keeps every promise of
the core's path: order per sender, copies of mutable payloads, stop, crash, kill, hot swap,
mailbox size, and many threads and actors at once."""

from __future__ import annotations

import gc
import random
import threading
import weakref

import pytest

import iris


def held(rt, handler, **spawn_kw):
    """Spawns `handler` behind a gate: its first message blocks until `open()` is called,
    so everything sent meanwhile finds the actor busy (the lane's case)."""
    started, gate = threading.Event(), threading.Event()
    first = [True]

    def wrapped(msg):
        if first[0]:
            first[0] = False
            started.set()
            gate.wait(10)
            return None
        return handler(msg)

    pid = rt.spawn(wrapped, **spawn_kw)
    assert rt.send(pid, b"gate")
    assert started.wait(5)
    return pid, gate.set


def test_one_sender_keeps_its_order_across_send_send_many_and_send_named(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    rt.register("lane-target", pid)
    expected = []
    for i in range(3000):
        m = b"%d" % i
        expected.append(m)
        way = i % 3
        if way == 0:
            assert rt.send(pid, m) is True
        elif way == 1:
            assert rt.send_many(pid, [m]) == 1
        else:
            assert rt.send_named("lane-target", m) is True
    open_gate()
    assert until(lambda: len(got) == len(expected))
    assert got == expected


def test_mutable_payloads_are_copied_at_send_and_arrive_as_bytes(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    buf = bytearray(b"abc")
    view_src = bytearray(b"xyz")
    assert rt.send(pid, buf)
    assert rt.send(pid, memoryview(view_src))
    assert rt.send(pid, b"plain")
    buf[0] = ord("Z")
    view_src[0] = ord("Q")
    open_gate()
    assert until(lambda: len(got) == 3)
    assert got == [b"abc", b"xyz", b"plain"]
    assert all(type(m) is bytes for m in got)


def test_wrong_payload_types_raise_before_anything_is_queued(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    with pytest.raises(TypeError):
        rt.send(pid, "text")
    with pytest.raises(TypeError):
        rt.send_named("nobody-has-this-name", 3)
    assert rt.send(pid, b"ok")
    open_gate()
    assert until(lambda: got == [b"ok"])


def test_mailbox_size_counts_the_lane_and_not_its_wake_up(rt, until):
    pid, open_gate = held(rt, lambda m: None)
    for _ in range(49):
        rt.send(pid, b"m")
    assert rt.mailbox_size(pid) == 49
    open_gate()
    assert until(lambda: rt.mailbox_size(pid) == 0)


def test_stop_sentinel_in_the_lane_ends_the_actor_and_drops_the_rest(rt, until):
    got = []

    def handler(msg):
        got.append(msg)
        return iris.STOP if msg == b"quit" else None

    pid, open_gate = held(rt, handler)
    for m in (b"a", b"b", b"quit", b"never", b"never"):
        assert rt.send(pid, m)
    open_gate()
    info = rt.join(pid, timeout=5)
    assert info.reason == "Normal"
    assert got == [b"a", b"b", b"quit"]
    assert rt.send(pid, b"late") is False
    assert rt.mailbox_size(pid) is None


def test_a_crash_in_the_lane_ends_only_that_actor_with_its_traceback(rt, until):
    def handler(msg):
        if msg == b"3":
            raise ValueError("lane boom")

    other_got = []
    other = rt.spawn(other_got.append)
    pid, open_gate = held(rt, handler)
    for i in range(10):
        assert rt.send(pid, b"%d" % i)
    open_gate()
    info = rt.join(pid, timeout=5)
    assert info.reason == "Crash"
    assert "ValueError: lane boom" in info.metadata
    assert rt.send(pid, b"late") is False
    assert rt.send(other, b"fine")
    assert until(lambda: other_got == [b"fine"])


def test_stop_from_outside_drops_the_lane_backlog(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    for _ in range(500):
        rt.send(pid, b"m")
    assert rt.stop(pid) is True
    assert rt.send(pid, b"after") is False
    open_gate()
    assert rt.join(pid, timeout=5).reason == "Killed"
    assert got == []


def test_a_kill_while_draining_stops_after_the_current_message(rt, until):
    got = []
    me = []

    def handler(msg):
        got.append(msg)
        if len(got) == 5:
            rt.stop(me[0])

    pid, open_gate = held(rt, handler)
    me.append(pid)
    for i in range(200):
        rt.send(pid, b"%d" % i)
    open_gate()
    assert rt.join(pid, timeout=5).reason == "Killed"
    assert len(got) == 5


def test_hot_swap_during_a_drain_hands_the_next_message_to_the_new_handler(rt, until):
    seen = []
    me = []

    def new(msg):
        seen.append(("new", msg))

    def old(msg):
        seen.append(("old", msg))
        if msg == b"4":
            rt.hot_swap(me[0], new)

    pid, open_gate = held(rt, old)
    me.append(pid)
    for i in range(10):
        rt.send(pid, b"%d" % i)
    open_gate()
    assert until(lambda: len(seen) == 10)
    assert seen == [("old", b"%d" % i) for i in range(5)] + [
        ("new", b"%d" % i) for i in range(5, 10)
    ]
    assert rt.behavior_version(pid) == 2
    # A rollback brings the first handler back for what is queued next.
    started2, gate2 = threading.Event(), threading.Event()

    def gate(msg):
        started2.set()
        gate2.wait(10)
        seen.append(("gate", msg))

    rt.hot_swap(pid, gate)
    rt.send(pid, b"g")
    assert started2.wait(5)
    rt.rollback_behavior(pid, 2)
    for i in range(3):
        rt.send(pid, b"r%d" % i)
    gate2.set()
    assert until(lambda: len(seen) == 14)
    assert seen[10:] == [("gate", b"g")] + [("old", b"r%d" % i) for i in range(3)]


def test_a_big_backlog_is_drained_a_budget_at_a_time(until):
    # One scheduler thread: the flooded actor must give way to another between budgets.
    with iris.Runtime(workers=1) as rt:
        order = []
        flood, open_gate = held(rt, lambda m: order.append("flood"), budget=10)
        other = rt.spawn(lambda m: order.append("other"))
        for _ in range(20000):
            rt.send(flood, b"f")
        rt.send(other, b"o")
        open_gate()
        assert until(lambda: len(order) == 20001, timeout=30)
        assert order.index("other") < 1000


def test_many_threads_send_to_one_actor_each_in_order(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    threads, per = 8, 2000

    def sender(t):
        rng = random.Random(t)
        i = 0
        while i < per:
            if rng.random() < 0.3:
                n = min(per - i, rng.randint(1, 20))
                assert rt.send_many(pid, [b"%d:%d" % (t, i + k) for k in range(n)]) == n
                i += n
            else:
                assert rt.send(pid, b"%d:%d" % (t, i))
                i += 1

    ts = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    # Let the actor run while the senders still send: the lane fills and drains at once.
    open_gate()
    for t in ts:
        t.join()
    assert until(lambda: len(got) == threads * per, timeout=30)
    last = {}
    for m in got:
        t, i = (int(x) for x in m.split(b":"))
        assert last.get(t, -1) == i - 1, f"sender {t} out of order at {i}"
        last[t] = i
    assert all(last[t] == per - 1 for t in range(threads))


def test_many_actors_and_threads_with_random_interleavings(rt, until):
    actors = 64
    got = [[] for _ in range(actors)]
    pids = [rt.spawn(got[a].append) for a in range(actors)]
    threads, per = 4, 1500

    def sender(t):
        rng = random.Random(100 + t)
        for i in range(per):
            a = rng.randrange(actors)
            assert rt.send(pids[a], b"%d:%d" % (t, i))

    ts = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert until(lambda: sum(map(len, got)) == threads * per, timeout=30)
    for a in range(actors):
        last = {}
        for m in got[a]:
            t, i = (int(x) for x in m.split(b":"))
            assert last.get(t, -1) < i, f"actor {a}: sender {t} out of order"
            last[t] = i


def test_ended_actors_lanes_are_swept_as_new_ones_come(rt, until):
    # Many short-lived busy actors: each gets a lane backlog and ends; spawning keeps going
    # and the runtime stays usable (the sweep keeps the lane table from growing unbounded).
    done = []
    for round_ in range(30):
        pids = []
        for _ in range(200):
            pid, open_gate = held(rt, lambda m: iris.STOP)
            rt.send(pid, b"x")
            rt.send(pid, b"y")
            open_gate()
            pids.append(pid)
        for pid in pids:
            assert rt.join(pid, timeout=5).reason == "Normal"
        done.append(round_)
    assert len(done) == 30
    assert rt.actor_count() == 0


def test_an_ended_actors_handler_is_released_without_further_sends(rt, until):
    # The lane holds its actor; the actor's end must let both go (a pending call sweeps
    # the lane), or a dead actor would keep its handler, and all it refers to, alive.
    class Handler:
        def __call__(self, msg):
            return iris.STOP if msg == b"quit" else None

    handler = Handler()
    ref = weakref.ref(handler)
    pid, open_gate = held(rt, handler)
    assert rt.send(pid, b"a")
    assert rt.send(pid, b"quit")
    del handler
    open_gate()
    assert rt.join(pid, timeout=5).reason == "Normal"

    def released():
        gc.collect()
        rt.is_alive(pid)  # any call into the binding applies deferred reference drops
        return ref() is None

    assert until(released)


def test_send_many_into_a_lane_keeps_order_and_stops_at_a_bad_item(rt, until):
    got = []
    pid, open_gate = held(rt, got.append)
    rt.send(pid, b"first")
    rt.send(pid, b"second")  # behind a backlog now: the lane
    batch = [b"%d" % i for i in range(2500)] + [bytearray(b"copied")]
    assert rt.send_many(pid, batch) == len(batch)
    with pytest.raises(TypeError):
        rt.send_many(pid, iter([b"a", b"b", "not bytes", b"never"]))
    assert rt.send(pid, b"last")
    open_gate()
    expected = [b"first", b"second"] + [bytes(b) for b in batch] + [b"a", b"b", b"last"]
    assert until(lambda: len(got) == len(expected))
    assert got == expected
    assert rt.stop(pid)
    rt.join(pid, timeout=5)
    assert rt.send_many(pid, [b"x", b"y"]) == 0
