"""Bounded mailboxes and overflow policies, mailbox sizes, timers."""

from __future__ import annotations

import threading

import pytest

import iris


def gate():
    """A handler blocked until released, so messages stay queued."""
    started = threading.Event()
    release = threading.Event()
    got = []

    def handler(msg):
        started.set()
        release.wait(10)
        got.append(msg)

    return handler, started, release, got


def test_seed_bounded_example(rt):
    # The seed's example, with the handler held on a first message: otherwise the actor may
    # already have taken "one" out when "three" is sent.
    handler, started, release, got = gate()
    pid = rt.spawn_py_handler_bounded(handler, budget=100, capacity=2)
    try:
        assert rt.send(pid, b"zero")
        assert started.wait(5)
        assert rt.send(pid, b"one")
        assert rt.send(pid, b"two")
        assert not rt.send(pid, b"three")
    finally:
        release.set()


def test_dropnew_and_dropold(rt, until):
    handler, started, release, got = gate()
    pid = rt.spawn_py_handler_bounded(handler, 100, 2)
    assert rt.send(pid, b"0")
    assert started.wait(5)
    assert rt.send(pid, b"1") and rt.send(pid, b"2")
    assert rt.mailbox_size(pid) == 2
    assert rt.send(pid, b"3") is False
    rt.set_overflow_policy(pid, "dropold")
    assert rt.send(pid, b"4") is True
    assert rt.mailbox_size(pid) == 2
    release.set()
    assert until(lambda: len(got) == 3)
    assert got == [b"0", b"2", b"4"]


def test_redirect_and_spill(rt, until):
    handler, started, release, got = gate()
    fallback = []
    primary = rt.spawn_py_handler_bounded(handler, budget=100, capacity=1)
    back = rt.spawn(fallback.append, budget=100)
    rt.send(primary, b"first")
    assert started.wait(5)
    rt.send(primary, b"queued")
    rt.set_overflow_policy(primary, "redirect", back)
    assert rt.send(primary, b"redirected")
    assert until(lambda: fallback == [b"redirected"])
    rt.set_overflow_policy(primary, "spill", back)
    done = []
    sender = threading.Thread(target=lambda: done.append(rt.send(primary, b"spilled")))
    sender.start()
    assert until(lambda: fallback == [b"redirected", b"spilled"])
    release.set()
    sender.join(5)
    assert done == [True]
    assert until(lambda: got == [b"first", b"queued", b"spilled"])


def test_block_waits_for_room_with_the_gil_released(rt, until):
    handler, started, release, got = gate()
    pid = rt.spawn_py_handler_bounded(handler, 100, 1)
    rt.set_overflow_policy(pid, "block", None)
    rt.send(pid, b"a")
    assert started.wait(5)
    rt.send(pid, b"b")
    done = []
    sender = threading.Thread(target=lambda: done.append(rt.send(pid, b"c")))
    sender.start()
    # The blocked sender does not hold the GIL: this thread runs on and releases it.
    assert not until(lambda: bool(done), timeout=0.1)
    release.set()
    sender.join(5)
    assert done == [True]
    assert until(lambda: got == [b"a", b"b", b"c"])


def test_redirect_cycle_is_rejected(rt):
    handler, started, release, got = gate()
    a = rt.spawn_py_handler_bounded(handler, 100, 1)
    b = rt.spawn_py_handler_bounded(handler, 100, 1)
    try:
        rt.send(a, b"x")
        rt.send(b, b"x")
        assert started.wait(5)
        rt.send(a, b"fill")
        rt.send(b, b"fill")
        rt.set_overflow_policy(a, "redirect", b)
        rt.set_overflow_policy(b, "redirect", a)
        assert rt.send(a, b"loop") is False
    finally:
        release.set()


def test_policy_errors(rt):
    bounded = rt.spawn_py_handler_bounded(lambda m: None, 10, 4)
    unbounded = rt.spawn(lambda m: None)
    with pytest.raises(ValueError):
        rt.set_overflow_policy(bounded, "sometimes")
    with pytest.raises(ValueError):
        rt.set_overflow_policy(bounded, "redirect")
    with pytest.raises(iris.IrisError):
        rt.set_overflow_policy(unbounded, "dropold")
    with pytest.raises(iris.NoProcessError):
        rt.set_overflow_policy(10**12, "dropold")
    with pytest.raises(iris.ConfigError):
        rt.spawn_py_handler_bounded(lambda m: None, 10, 0)
    with pytest.raises(ValueError):
        rt.spawn_py_handler_bounded(lambda m: None, 10, 0)


def test_timers(rt, until):
    got = []
    pid = rt.spawn(got.append)
    t1 = rt.send_after(pid, 20, b"once")
    t2 = rt.send_interval(pid, 10, b"tick")
    cancelled = rt.send_after(pid, 10_000, b"never")
    assert rt.cancel_timer(cancelled) is True
    assert rt.cancel_timer(cancelled) is False
    assert until(lambda: b"once" in got and got.count(b"tick") >= 3)
    assert rt.cancel_timer(t1) is False
    assert rt.cancel_timer(t2) is True
    assert b"never" not in got
    assert rt.timer_count() == 0


def test_timers_die_with_their_actor(rt):
    pid = rt.spawn(lambda m: None)
    rt.send_interval(pid, 10, b"tick")
    assert rt.timer_count() == 1
    rt.stop(pid)
    rt.join(pid, timeout=5)
    assert rt.timer_count() == 0
