"""Pull actors: recv, timeouts, system messages, MailboxClosed, selective receive."""

from __future__ import annotations

import threading

import pytest

import iris


def test_seed_saga_coordinator(rt, until):
    log = []

    def saga_coordinator(mailbox):
        msg = mailbox.recv()
        log.append(("start", msg))
        confirm = mailbox.recv(timeout=5.0)
        log.append("Confirmed" if confirm else "Timed out")

    pid = rt.spawn_with_mailbox(saga_coordinator, budget=100)
    rt.send(pid, b"begin")
    rt.send(pid, b"ok")
    assert rt.join(pid, timeout=5).reason == "Normal"
    assert log == [("start", b"begin"), "Confirmed"]


def test_recv_timeout_returns_none(rt):
    seen = []

    def handler(mailbox):
        seen.append(mailbox.recv(timeout=0.05))

    pid = rt.spawn_with_mailbox(handler)
    assert rt.join(pid, timeout=5).reason == "Normal"
    assert seen == [None]


def test_recv_releases_the_gil(rt):
    entered = threading.Event()

    def handler(mailbox):
        entered.set()
        mailbox.recv()

    pid = rt.spawn_with_mailbox(handler)
    assert entered.wait(5)
    # The main thread keeps running Python while the actor blocks.
    total = sum(range(200000))
    assert total > 0
    assert rt.mailbox_size(pid) == 0
    rt.send(pid, b"go")
    assert rt.join(pid, timeout=5).reason == "Normal"


def test_queued_messages_come_in_order_system_first_without_waiting(rt, until):
    gate = threading.Event()
    got = []

    def handler(mailbox):
        gate.wait(10)
        while True:
            msg = mailbox.recv(timeout=0)
            if msg is None:
                return
            got.append(msg if isinstance(msg, bytes) else msg.type_name)

    pid = rt.spawn_with_mailbox(handler)
    rt.trap_exit(pid)
    doomed = rt.spawn(lambda m: None)
    rt.link(pid, doomed)
    for i in range(1000):
        assert rt.send(pid, b"%d" % i)
    rt.stop(doomed)
    assert until(lambda: rt.exit_info(doomed) is not None)
    gate.set()
    assert rt.join(pid, timeout=10).reason == "Normal"
    assert got == ["EXIT"] + [b"%d" % i for i in range(1000)]


def test_stop_raises_mailbox_closed_and_ends_the_loop(rt):
    raised = []

    def handler(mailbox):
        try:
            while True:
                mailbox.recv()
        except iris.MailboxClosed as e:
            raised.append(e)
            raise

    pid = rt.spawn_with_mailbox(handler)
    assert rt.is_alive(pid)
    assert rt.stop(pid)
    info = rt.join(pid, timeout=5)
    assert info.reason == "Killed"
    assert len(raised) == 1
    assert isinstance(raised[0], iris.IrisError)


def test_exception_in_pull_handler_is_a_crash(rt):
    def handler(mailbox):
        mailbox.recv()
        raise RuntimeError("pull failed")

    pid = rt.spawn_with_mailbox(handler)
    rt.send(pid, b"x")
    info = rt.join(pid, timeout=5)
    assert info.reason == "Crash"
    assert "RuntimeError: pull failed" in info.metadata
    assert "Traceback" in info.metadata


def test_selective_recv_keeps_the_others_in_order(rt):
    out = []

    def handler(mailbox):
        out.append(mailbox.selective_recv(lambda m: m.startswith(b"b"), timeout=5))
        while (m := mailbox.recv(timeout=0.2)) is not None:
            out.append(m)

    pid = rt.spawn_with_mailbox(handler)
    for m in (b"a1", b"a2", b"b1", b"a3", b"b2"):
        rt.send(pid, m)
    assert rt.join(pid, timeout=5).reason == "Normal"
    assert out == [b"b1", b"a1", b"a2", b"a3", b"b2"]


def test_selective_recv_waits_for_a_later_match_and_times_out(rt, until):
    out = []
    ready = threading.Event()

    def handler(mailbox):
        ready.set()
        out.append(mailbox.selective_recv(lambda m: m == b"yes", timeout=5))
        out.append(mailbox.selective_recv(lambda m: m == b"never", timeout=0.05))
        out.append(mailbox.recv(timeout=0.1))

    pid = rt.spawn_with_mailbox(handler)
    assert ready.wait(5)
    rt.send(pid, b"no")
    assert until(lambda: rt.mailbox_size(pid) == 1)
    rt.send(pid, b"yes")
    assert rt.join(pid, timeout=5).reason == "Normal"
    assert out == [b"yes", None, b"no"]


def test_selective_recv_matcher_errors_are_raised(rt):
    caught = []

    def handler(mailbox):
        try:
            mailbox.selective_recv(lambda m: 1 / 0, timeout=5)
        except ZeroDivisionError as e:
            caught.append(e)
        caught.append(mailbox.recv(timeout=1))

    pid = rt.spawn_with_mailbox(handler)
    rt.send(pid, b"kept")
    assert rt.join(pid, timeout=5).reason == "Normal"
    assert isinstance(caught[0], ZeroDivisionError)
    assert caught[1] == b"kept"
    with pytest.raises(TypeError):
        rt.spawn_with_mailbox(None)


def test_selective_recv_while_main_thread_sends(rt):
    got = []

    def handler(mailbox):
        for want in range(50):
            got.append(mailbox.selective_recv(lambda m, w=want: m == str(w).encode(), timeout=5))

    pid = rt.spawn_with_mailbox(handler)
    for i in reversed(range(50)):
        rt.send(pid, str(i).encode())
        rt.mailbox_size(pid)
    assert rt.join(pid, timeout=10).reason == "Normal"
    assert got == [str(i).encode() for i in range(50)]


def test_mailbox_after_exit_raises_closed(rt):
    kept = []

    def handler(mailbox):
        kept.append(mailbox)

    pid = rt.spawn_with_mailbox(handler)
    rt.join(pid, timeout=5)
    with pytest.raises(iris.MailboxClosed):
        kept[0].recv(timeout=0.1)
    assert kept[0].pid == pid
    assert "Mailbox" in repr(kept[0])
