"""Push actors: delivery, order, STOP, crashes, payload types, bad input."""

from __future__ import annotations

import threading
import time

import pytest

import iris


def test_handler_gets_bytes_in_order(rt, until):
    got = []
    pid = rt.spawn(got.append)
    for i in range(500):
        assert rt.send(pid, str(i).encode())
    assert until(lambda: len(got) == 500)
    assert got == [str(i).encode() for i in range(500)]
    assert all(type(m) is bytes for m in got)


@pytest.mark.parametrize("release_gil", [False, True])
def test_one_at_a_time_and_in_order_in_every_mode(rt, until, release_gil):
    got = []
    busy = []
    overlap = []

    def handler(msg):
        if busy:
            overlap.append(msg)
        busy.append(1)
        got.append(int(msg))
        busy.pop()

    pid = rt.spawn(handler, budget=7, release_gil=release_gil)
    for i in range(300):
        rt.send(pid, str(i).encode())
    assert until(lambda: len(got) == 300)
    assert got == list(range(300))
    assert overlap == []


def test_release_gil_runs_off_the_calling_thread(rt, until):
    idents = []
    pid = rt.spawn(lambda m: idents.append(threading.get_ident()), release_gil=True)
    rt.send(pid, b"ping")
    assert until(lambda: idents)
    assert idents[0] != threading.get_ident()


def test_a_blocking_release_gil_handler_holds_up_no_other_actor(until):
    # One worker: the blocked handler must hand it off, or `quick` never runs.
    rt = iris.Runtime(workers=1)
    try:
        quick_ran = threading.Event()
        results = []
        slow = rt.spawn(lambda m: results.append(quick_ran.wait(10)), release_gil=True)
        quick = rt.spawn(lambda m: quick_ran.set())
        rt.send(slow, b"wait")
        rt.send(quick, b"go")
        assert quick_ran.wait(5)
        assert until(lambda: results == [True], timeout=5)
    finally:
        rt.shutdown()


def test_release_gil_shared_pool_runs_one_batch_per_slot(rt, until):
    rt.set_release_gil_limits(0, 1)
    lock = threading.Lock()
    running = [0]
    most = [0]
    done = []

    def handler(msg):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        done.append(msg)

    pids = [rt.spawn(handler, release_gil=True) for _ in range(3)]
    for pid in pids:
        for i in range(3):
            rt.send(pid, bytes([i]))
    assert until(lambda: len(done) == 9, timeout=10)
    assert most[0] == 1


def test_bytes_like_payloads_are_copied(rt, until):
    got = []
    pid = rt.spawn(got.append)
    buf = bytearray(b"abc")
    assert rt.send(pid, b"bytes")
    assert rt.send(pid, buf)
    assert rt.send(pid, memoryview(b"view"))
    assert rt.send(pid, memoryview(b"0123456789")[2:8:2])
    import array

    assert rt.send(pid, array.array("B", [1, 2, 3]))
    buf[0] = ord("X")
    assert until(lambda: len(got) == 5)
    assert got == [b"bytes", b"abc", b"view", b"246", b"\x01\x02\x03"]


def test_empty_and_one_byte_payloads_arrive_as_sent(rt, until):
    got = []
    pid = rt.spawn(got.append)
    sent = [b"", *(bytes([i]) for i in range(256)), b"", b"\x00\x00"]
    for m in sent:
        assert rt.send(pid, m)
    assert until(lambda: len(got) == len(sent))
    assert got == sent


def test_send_many_keeps_order_with_single_sends(rt, until):
    got = []
    pid = rt.spawn(got.append, budget=3)
    assert rt.send(pid, b"first")
    assert rt.send_many(pid, [str(i).encode() for i in range(100)]) == 100
    assert rt.send_many(pid, (b"t1", bytearray(b"t2"))) == 2
    assert rt.send_many(pid, (m for m in [b"g1", memoryview(b"g2")])) == 2
    assert rt.send_many(pid, []) == 0
    assert rt.send(pid, b"last")
    want = [b"first", *(str(i).encode() for i in range(100)), b"t1", b"t2", b"g1", b"g2"]
    assert until(lambda: len(got) == len(want) + 1)
    assert got == want + [b"last"]


def test_send_many_counts_what_was_queued(rt, until):
    assert rt.send_many(10**15, [b"a", b"b"]) == 0
    got = []
    pid = rt.spawn(got.append)
    with pytest.raises(TypeError):
        rt.send_many(pid, [b"ok", "not bytes", b"never"])
    assert until(lambda: got == [b"ok"])
    with pytest.raises(TypeError):
        rt.send_many(pid, 42)
    gate = threading.Event()
    full = rt.spawn_py_handler_bounded(lambda m: gate.wait(10), 1, 1)
    assert rt.send(full, b"blocks the handler")
    assert until(lambda: rt.mailbox_size(full) == 0)
    assert rt.send_many(full, [b"fills it", b"dropped", b"dropped"]) == 1
    # Refused before the bad item: a count, not an error (as one send per item stops).
    assert rt.send_many(full, [b"dropped", "not bytes"]) == 0
    assert rt.send_many(10**15, [b"a", "not bytes"]) == 0
    gate.set()


def test_send_many_across_chunks_and_a_failing_iterator(rt, until):
    got = []
    pid = rt.spawn(got.append, budget=50)
    burst = [i.to_bytes(2, "big") for i in range(2500)]
    assert rt.send_many(pid, burst) == 2500
    assert until(lambda: len(got) == 2500)
    assert got == burst

    def items():
        yield from (i.to_bytes(2, "big") for i in range(1500))
        raise RuntimeError("source failed")

    got.clear()
    with pytest.raises(RuntimeError, match="source failed"):
        rt.send_many(pid, items())
    assert until(lambda: len(got) == 1500)
    assert got == burst[:1500]
    # A stopped actor takes no chunk.
    rt.stop(pid)
    rt.join(pid, timeout=5)
    assert rt.send_many(pid, burst) == 0


def test_huge_payload(rt, until):
    sizes = []
    pid = rt.spawn(lambda m: sizes.append(len(m)))
    assert rt.send(pid, b"\xab" * (16 * 1024 * 1024))
    assert until(lambda: sizes == [16 * 1024 * 1024])


def test_returning_stop_ends_the_actor_normally(rt):
    def handler(msg):
        if msg == b"quit":
            return iris.STOP
        return None

    pid = rt.spawn(handler)
    rt.send(pid, b"work")
    rt.send(pid, b"quit")
    info = rt.join(pid, timeout=5)
    assert info is not None
    assert info.reason == "Normal"
    assert info.metadata is None
    assert not rt.is_alive(pid)
    assert rt.send(pid, b"late") is False


def test_exception_crashes_only_that_actor_with_traceback(rt, until):
    def bad(msg):
        raise ValueError("boom " + msg.decode())

    ok = []
    pid = rt.spawn(bad)
    other = rt.spawn(ok.append)
    rt.send(pid, b"x")
    info = rt.join(pid, timeout=5)
    assert info.reason == "Crash"
    assert "ValueError: boom x" in info.metadata
    assert "Traceback (most recent call last)" in info.metadata
    assert "in bad" in info.metadata
    rt.send(other, b"still here")
    assert until(lambda: ok == [b"still here"])
    assert rt.is_alive(other)


def test_base_exceptions_crash_too(rt):
    def bad(msg):
        raise KeyboardInterrupt

    pid = rt.spawn(bad)
    rt.send(pid, b"x")
    assert rt.join(pid, timeout=5).reason == "Crash"


def test_wrong_types_raise_type_error(rt):
    pid = rt.spawn(lambda m: None)
    with pytest.raises(TypeError):
        rt.send(pid, "text is not bytes")
    with pytest.raises(TypeError):
        rt.send(pid, 12)
    with pytest.raises(TypeError):
        rt.send("pid", b"x")
    with pytest.raises(TypeError):
        rt.spawn(42)
    with pytest.raises(TypeError):
        rt.spawn(lambda m: None, budget="lots")
    with pytest.raises(TypeError):
        rt.is_alive(None)


def test_dead_and_unknown_pids_answer_false_or_none(rt):
    for pid in (0, -1, 2**70, 987654321987):
        assert rt.send(pid, b"x") is False
        assert rt.is_alive(pid) is False
        assert rt.mailbox_size(pid) is None
        assert rt.stop(pid) is False
        assert rt.join(pid) is None
        assert rt.behavior_version(pid) is None
        assert rt.exit_info(pid) is None
        assert rt.children_of(pid) == []


def test_stop_kills_after_current_message(rt, until):
    started = threading.Event()
    release = threading.Event()
    got = []

    def slow(msg):
        started.set()
        release.wait(5)
        got.append(msg)

    pid = rt.spawn(slow, release_gil=True)
    rt.send(pid, b"1")
    rt.send(pid, b"2")
    assert started.wait(5)
    assert rt.stop(pid) is True
    assert rt.send(pid, b"3") is False
    release.set()
    assert rt.join(pid, timeout=5).reason == "Killed"
    assert got == [b"1"]


def test_join_timeout_on_a_live_actor(rt):
    pid = rt.spawn(lambda m: None)
    assert rt.join(pid, timeout=0.05) is None
    assert rt.is_alive(pid)
    with pytest.raises(ValueError):
        rt.join(pid, timeout=-1)


def test_many_actors_and_count(rt):
    pids = [rt.spawn(lambda m: None) for _ in range(100)]
    assert len(set(pids)) == 100
    assert all(p > 0 for p in pids)
    assert rt.actor_count() >= 100


def test_pids_are_unique_across_runtimes():
    a, b = iris.Runtime(), iris.Runtime()
    try:
        pa = {a.spawn(lambda m: None) for _ in range(10)}
        pb = {b.spawn(lambda m: None) for _ in range(10)}
        assert not pa & pb
        assert all(p < 2**53 for p in pa | pb)
    finally:
        a.shutdown()
        b.shutdown()


def test_context_manager_stops_actors():
    with iris.Runtime() as rt:
        pid = rt.spawn(lambda m: None)
        assert rt.is_alive(pid)
    assert not rt.is_alive(pid)
    with pytest.raises(iris.SpawnError):
        rt.spawn(lambda m: None)


def test_budget_keeps_a_flooded_actor_from_starving_others(until):
    # One scheduler thread, held by a blocker while the flood and then the idle messages are
    # queued; once released, the flooded actor may handle only `budget` messages in a row
    # before the idle actors get their turn.
    with iris.Runtime(workers=1) as rt:
        order = []
        started, gate = threading.Event(), threading.Event()

        def blocker(msg):
            started.set()
            gate.wait(10)

        hold = rt.spawn(blocker)
        flood = rt.spawn(lambda m: order.append("flood"), budget=10)
        idle = [rt.spawn(lambda m: order.append("idle"), budget=10) for _ in range(100)]
        rt.send(hold, b"block")
        assert started.wait(5)
        for _ in range(20000):
            rt.send(flood, b"f")
        for p in idle:
            rt.send(p, b"i")
        gate.set()
        assert until(lambda: len(order) == 20100, timeout=30)
        last_idle = max(i for i, who in enumerate(order) if who == "idle")
        assert last_idle < 1000, f"the idle actors waited for {last_idle} flood messages"


def test_runtime_with_one_worker_thread(until):
    with iris.Runtime(workers=1) as one:
        got = []
        pids = [one.spawn(got.append) for _ in range(50)]
        for pid in pids:
            one.send(pid, b"x")
        assert until(lambda: len(got) == 50)
    with pytest.raises(ValueError):
        iris.Runtime(workers=0)


@pytest.mark.parametrize("release_gil", [False, True])
def test_current_pid_is_the_running_actor_in_every_mode(rt, until, release_gil):
    seen = []
    pids = [rt.spawn(lambda m: seen.append((m, iris.current_pid())), release_gil=release_gil)
            for _ in range(20)]
    for i, p in enumerate(pids):
        rt.send(p, str(i).encode())
    assert until(lambda: len(seen) == 20)
    assert sorted(seen) == sorted((str(i).encode(), p) for i, p in enumerate(pids))
    assert iris.current_pid() is None


def test_current_pid_in_a_pull_actor_and_none_outside(rt, until):
    seen = []

    def body(mailbox):
        mailbox.recv()
        seen.append(iris.current_pid())

    pid = rt.spawn_with_mailbox(body)
    rt.send(pid, b"go")
    assert until(lambda: seen)
    assert seen == [pid]
    assert iris.current_pid() is None
