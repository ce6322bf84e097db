"""Children, virtual actors, hot swap, release_gil limits, seed examples."""

from __future__ import annotations

import threading

import pytest

import iris


def test_seed_structured_concurrency_corrected(rt):
    def parent_handler(msg):
        if msg == b"quit":
            return iris.STOP
        return None

    parent = rt.spawn(parent_handler)
    child = rt.spawn_child(parent, lambda msg: None)
    assert rt.children_of(parent) == [child]
    rt.send(parent, b"quit")
    assert rt.join(parent, timeout=5).reason == "Normal"
    assert rt.join(child, timeout=5).reason == "Shutdown"
    assert not rt.is_alive(child)


def test_children_of_every_kind_die_with_the_parent(rt):
    parent = rt.spawn(lambda m: None)
    push = rt.spawn_child(parent, lambda m: None, budget=10)
    budgeted = rt.spawn_child_with_budget(parent, lambda m: None, 10)

    def pull(mailbox):
        while True:
            mailbox.recv()

    pulled = rt.spawn_child_with_mailbox(parent, pull)
    pool = rt.spawn_child_pool(parent, size=3)
    pool2 = iris.spawn_child_pool(rt, parent, size=2)
    assert len(pool) == 3 and len(pool2) == 2
    assert all(rt.is_alive(w) for w in pool + pool2)
    rt.stop(parent)
    for pid in [push, budgeted, pulled, *pool, *pool2]:
        assert rt.join(pid, timeout=5).reason == "Shutdown"


def test_spawning_under_a_dead_parent_raises(rt):
    parent = rt.spawn(lambda m: None)
    rt.stop(parent)
    rt.join(parent, timeout=5)
    with pytest.raises(iris.SpawnError):
        rt.spawn_child(parent, lambda m: None)
    with pytest.raises(iris.SpawnError):
        rt.spawn_child_with_mailbox(parent, lambda mb: None)
    with pytest.raises(iris.SpawnError):
        iris.spawn_child_pool(rt, parent, size=2)


def test_worker_pool_round_robin(rt, until):
    from itertools import cycle

    seen = []
    parent = rt.spawn(lambda m: None)
    workers = rt.spawn_child_pool(parent, 4, lambda m: seen.append(m))
    ring = cycle(workers)
    for i in range(40):
        assert rt.send(next(ring), str(i).encode())
    assert until(lambda: len(seen) == 40)


def test_virtual_actor_starts_on_first_message(rt, until):
    got = []
    pid = rt.spawn_virtual(lambda msg: got.append(bytes(msg)), budget=100, idle_timeout_ms=500)
    assert rt.is_dormant(pid)
    assert rt.is_alive(pid)
    rt.send(pid, b"hello")
    assert until(lambda: got == [b"hello"])
    assert not rt.is_dormant(pid)


def test_virtual_actor_idles_out_with_timeout(rt):
    pid = rt.spawn_virtual(lambda m: None, idle_timeout_ms=30)
    rt.send(pid, b"wake")
    assert rt.join(pid, timeout=5).reason == "Timeout"


def test_virtual_actor_reactivates(rt, until):
    got = []
    pid = rt.spawn_virtual(got.append, idle_timeout_ms=20, reactivate=True)
    rt.send(pid, b"1")
    assert until(lambda: got == [b"1"])
    assert until(lambda: rt.is_dormant(pid))
    assert rt.send(pid, b"2")
    assert until(lambda: got == [b"1", b"2"])


def test_stop_frees_a_dormant_virtual_actor(rt):
    pid = rt.spawn_virtual(lambda m: None)
    assert rt.stop(pid)
    assert rt.send(pid, b"x") is False


def test_seed_hot_swap(rt, until):
    log = []

    def behavior_a(msg):
        log.append("Logic A")

    def behavior_b(msg):
        log.append("Logic B (Upgraded!)")

    pid = rt.spawn(behavior_a, budget=10)
    assert rt.behavior_version(pid) == 1
    rt.send(pid, b"test")
    assert until(lambda: log == ["Logic A"])
    assert rt.hot_swap(pid, behavior_b) == 2
    rt.send(pid, b"test")
    assert until(lambda: log == ["Logic A", "Logic B (Upgraded!)"])
    assert rt.rollback_behavior(pid) == 1
    rt.send(pid, b"test")
    assert until(lambda: log[-1] == "Logic A" and len(log) == 3)
    with pytest.raises(iris.IrisError):
        rt.rollback_behavior(pid, steps=5)


def test_hot_swap_keeps_release_gil_and_rejects_pull_actors(rt, until):
    idents = []
    pid = rt.spawn(lambda m: None, release_gil=True)
    rt.hot_swap(pid, lambda m: idents.append(threading.get_ident()))
    rt.send(pid, b"x")
    assert until(lambda: idents)
    assert idents[0] != threading.get_ident()
    pull = rt.spawn_with_mailbox(lambda mb: mb.recv())
    with pytest.raises(iris.IrisError):
        rt.hot_swap(pull, lambda m: None)
    with pytest.raises(iris.NoProcessError):
        rt.hot_swap(10**12, lambda m: None)
    with pytest.raises(TypeError):
        rt.hot_swap(pid, "not callable")
    rt.stop(pull)


def test_release_gil_limits_and_strict_mode(rt, until):
    rt.set_release_gil_limits(1, 1)
    rt.set_release_gil_strict(True)
    first = rt.spawn(lambda m: None, release_gil=True)
    with pytest.raises(iris.SpawnError):
        rt.spawn(lambda m: None, release_gil=True)
    rt.set_release_gil_strict(False)
    got = []
    shared = rt.spawn(got.append, release_gil=True)
    rt.send(shared, b"pooled")
    assert until(lambda: got == [b"pooled"])
    rt.stop(first)
    rt.join(first, timeout=5)
    rt.set_release_gil_strict(True)
    again = rt.spawn(lambda m: None, release_gil=True)
    assert rt.is_alive(again)
    with pytest.raises(ValueError):
        rt.set_release_gil_limits(4, 0)


def test_seed_release_gil_example(rt, until):
    seen = []

    def handler_no(msg):
        seen.append(("no release", threading.get_ident()))

    def handler_yes(msg):
        seen.append(("release", threading.get_ident()))

    pid_no = rt.spawn(handler_no, budget=10, release_gil=False)
    pid_yes = rt.spawn(handler_yes, budget=10, release_gil=True)
    rt.send(pid_no, b"ping")
    rt.send(pid_yes, b"ping")
    assert until(lambda: len(seen) == 2)
    assert {k for k, _ in seen} == {"no release", "release"}


def test_version_and_reprs():
    assert iris.version() == iris.__version__
    assert repr(iris.STOP) == "iris.STOP"
    assert "Runtime" in repr(iris.Runtime())
    assert issubclass(iris.InvalidPathError, ValueError)
    assert issubclass(iris.InvalidPathError, iris.IrisError)
    for cls in (iris.NoProcessError, iris.SpawnError, iris.MailboxClosed, iris.RegistryError):
        assert issubclass(cls, iris.IrisError)


def test_seed_push_workers_and_mailbox_size(rt, until):
    count = [0]

    def fast_worker(msg):
        count[0] += 1

    pids = [rt.spawn(fast_worker, budget=50) for _ in range(1000)]
    for pid in pids:
        rt.send(pid, b"job")
    assert until(lambda: count[0] == 1000)
    size = rt.mailbox_size(pids[0])
    assert size == 0


def test_dropping_a_runtime_stops_its_pull_actors(until):
    rt = iris.Runtime()
    closed = threading.Event()

    def handler(mailbox):
        try:
            mailbox.recv()
        except iris.MailboxClosed:
            closed.set()

    rt.spawn_with_mailbox(handler)
    del rt
    assert closed.wait(5)


def test_context_manager_closes_the_listener(monkeypatch):
    monkeypatch.setenv("IRIS_COOKIE", "iris-py-test-cookie")
    with iris.Runtime() as rt:
        addr = rt.listen("127.0.0.1:0")
        probe = iris.Runtime()
        assert probe.is_node_up(addr, timeout_ms=2000)
    assert not probe.is_node_up(addr, timeout_ms=300)
    probe.shutdown()
