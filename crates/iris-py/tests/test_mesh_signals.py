"""The mesh between two runtimes on loopback, and Ctrl-C during blocking waits."""

from __future__ import annotations

import _thread
import asyncio
import signal
import threading

import pytest

import iris


@pytest.fixture
def cookie(monkeypatch):
    monkeypatch.setenv("IRIS_COOKIE", "iris-py-test-cookie")


def test_listen_resolve_send_and_node_up(rt, until, cookie):
    other = iris.Runtime()
    try:
        got = []
        worker = other.spawn(got.append)
        other.register("auth_worker", worker)
        addr = other.listen("127.0.0.1:0")
        assert addr.startswith("127.0.0.1:") and not addr.endswith(":0")
        assert rt.is_node_up(addr, timeout_ms=2000)
        proxy = rt.resolve_remote(addr, "auth_worker")
        assert proxy is not None and proxy != worker
        assert rt.send(proxy, b"via proxy")
        assert rt.send_remote(addr, worker, b"login")
        assert until(lambda: sorted(got) == [b"login", b"via proxy"])
        assert rt.resolve_remote(addr, "nobody") is None

        async def find():
            return await rt.resolve_remote_py(addr, "auth_worker")

        assert asyncio.run(find()) == proxy
        assert other.close_listener() is True
    finally:
        other.shutdown()


def test_mesh_errors(rt, cookie):
    with pytest.raises(iris.MeshError):
        rt.listen("256.0.0.1:99999")
    assert rt.is_node_up("127.0.0.1:1", timeout_ms=200) is False


@pytest.fixture
def sigint():
    """Ctrl-C raises KeyboardInterrupt during the test, also when the suite was started with
    SIGINT ignored (a background job of a non-interactive shell), where Python leaves it
    ignored and `interrupt_main` does nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def test_ctrl_c_interrupts_join_on_the_main_thread(rt, sigint):
    pid = rt.spawn_with_mailbox(lambda mb: mb.recv())
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # Bounded: without the interrupt the test fails instead of hanging.
            rt.join(pid, timeout=30)
    finally:
        timer.cancel()
    assert rt.is_alive(pid)
    rt.stop(pid)
    assert rt.join(pid, timeout=5).reason == "Killed"


def test_ctrl_c_interrupts_recv_on_the_main_thread(rt, until, sigint):
    # The mailbox of a live actor that never receives itself, used from the main thread.
    hold = threading.Event()
    keeper = []

    def keep(mailbox):
        keeper.append(mailbox)
        hold.wait(10)

    live = rt.spawn_with_mailbox(keep)
    assert until(lambda: keeper)
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            keeper[0].recv(timeout=30)
    finally:
        timer.cancel()
        hold.set()
    assert rt.join(live, timeout=5).reason == "Normal"
