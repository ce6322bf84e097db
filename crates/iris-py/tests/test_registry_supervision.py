"""Names, paths, links, monitors, supervisors, observed actors and system messages."""

from __future__ import annotations

import pytest

import iris


def test_names(rt, until):
    got = []
    pid = rt.spawn(got.append)
    rt.register("auth_worker", pid)
    assert rt.whereis("auth_worker") == pid
    assert rt.resolve("auth_worker") == pid
    assert rt.send_named("auth_worker", b"login")
    assert until(lambda: got == [b"login"])
    other = rt.spawn(lambda m: None)
    with pytest.raises(iris.RegistryError):
        rt.register("auth_worker", other)
    assert rt.unregister("auth_worker") == pid
    assert rt.whereis("auth_worker") is None
    assert rt.send_named("auth_worker", b"x") is False
    with pytest.raises(iris.RegistryError):
        rt.register("", pid)
    with pytest.raises(iris.NoProcessError):
        rt.register("ghost", 10**12)


def test_names_of_dead_actors_are_removed(rt, until):
    pid = rt.spawn(lambda m: None)
    rt.register("short-lived", pid)
    rt.register_path("/tmp/short", pid)
    rt.stop(pid)
    rt.join(pid, timeout=5)
    assert rt.whereis("short-lived") is None
    assert rt.whereis_path("/tmp/short") is None
    fresh = rt.spawn(lambda m: None)
    rt.register("short-lived", fresh)
    assert rt.whereis("short-lived") == fresh


def test_seed_paths(rt):
    pid = rt.spawn(lambda m: None, 10)
    rt.register_path("/system/service/one", pid)
    two = rt.spawn(lambda m: None, 10)
    rt.register_path("/system/service/two", two)
    rt.register_path("/system/service/two/deep", two)
    assert rt.whereis_path("/system/service/one") == pid
    assert rt.list_children("/system/service") == [
        ("/system/service/one", pid),
        ("/system/service/two", two),
        ("/system/service/two/deep", two),
    ]
    assert rt.list_children_direct("/system/service") == [
        ("/system/service/one", pid),
        ("/system/service/two", two),
    ]
    assert rt.list_children_direct("/system") == []
    watched = rt.watch_path("/system/service")
    assert sorted(watched) == sorted([pid, two])
    assert sorted(rt.child_pids()) == sorted([pid, two])
    assert rt.children_count() == 2
    assert rt.unregister_path("/system/service/one") == pid
    assert rt.whereis_path("/system/service/one") is None


@pytest.mark.parametrize("bad", ["", "no/leading", "/a//b", "/trailing/"])
def test_bad_paths_raise_value_error(rt, bad):
    pid = rt.spawn(lambda m: None)
    with pytest.raises(ValueError):
        rt.register_path(bad, pid)
    with pytest.raises(iris.InvalidPathError):
        rt.register_path(bad, pid)


def test_seed_observed_exit_messages(rt, until):
    observer = rt.spawn_observed_handler(10)
    worker = rt.spawn(lambda m: 1 / 0)
    rt.link(observer, worker)
    rt.trap_exit(observer, True)
    rt.send(observer, b"hello")
    rt.send(worker, b"die")
    assert until(lambda: len(rt.get_messages(observer)) == 2)
    user, exit_msg = rt.get_messages(observer)
    assert user == b"hello"
    assert isinstance(exit_msg, iris.PySystemMessage)
    assert exit_msg.type_name == "EXIT"
    assert exit_msg.from_pid == worker
    assert exit_msg.target_pid == observer
    assert exit_msg.reason == "Crash"
    assert "ZeroDivisionError" in exit_msg.metadata
    assert "EXIT" in repr(exit_msg)
    same = iris.PySystemMessage("EXIT", worker, observer, "Crash", exit_msg.metadata)
    assert same == exit_msg
    assert hash(same) == hash(exit_msg)
    assert same != iris.PySystemMessage("DOWN", worker, observer, "Crash", exit_msg.metadata)


def test_link_kills_the_peer_unless_it_traps(rt):
    a = rt.spawn(lambda m: None)
    b = rt.spawn(lambda m: None)
    rt.link(a, b)
    crash = rt.spawn(lambda m: None)
    rt.link(crash, a)
    rt.stop(crash)
    assert rt.join(crash, timeout=5).reason == "Killed"
    assert rt.join(a, timeout=5).reason == "Killed"
    assert rt.join(b, timeout=5).reason == "Killed"


def test_unlink(rt):
    a = rt.spawn(lambda m: None)
    b = rt.spawn(lambda m: None)
    rt.link(a, b)
    assert rt.unlink(a, b) is True
    rt.stop(a)
    rt.join(a, timeout=5)
    assert rt.is_alive(b)


def test_monitor_delivers_down_to_push_and_pull_watchers(rt, until):
    downs = []
    watcher = rt.spawn(lambda m: downs.append(m) if isinstance(m, iris.PySystemMessage) else None)
    target = rt.spawn(lambda m: iris.STOP)
    ref = rt.monitor(watcher, target)
    assert isinstance(ref, int)
    rt.send(target, b"stop")
    assert until(lambda: len(downs) == 1)
    assert downs[0].type_name == "DOWN"
    assert downs[0].from_pid == target
    assert downs[0].reason == "Normal"
    assert downs[0].monitor_ref == ref

    got = []

    def pull(mailbox):
        got.append(mailbox.recv(timeout=5))

    puller = rt.spawn_with_mailbox(pull)
    rt.monitor(puller, 10**12)
    assert rt.join(puller, timeout=5).reason == "Normal"
    assert got[0].type_name == "DOWN"
    assert got[0].reason == "noproc"


def test_demonitor(rt):
    watcher = rt.spawn_observed_handler()
    target = rt.spawn(lambda m: None)
    ref = rt.monitor(watcher, target)
    assert rt.demonitor(ref) is True
    assert rt.demonitor(ref) is False
    rt.stop(target)
    rt.join(target, timeout=5)
    assert rt.get_messages(watcher) == []


def test_supervise_with_factory_restarts_and_never_calls_at_registration(rt, until):
    calls = []

    def factory():
        calls.append(1)
        return rt.spawn(lambda m: 1 / 0)

    first = rt.spawn(lambda m: 1 / 0)
    rt.supervise_with_factory(first, factory, "restartone")
    assert calls == []
    rt.send(first, b"crash")
    assert until(lambda: len(calls) == 1 and rt.children_count() == 1)
    (replacement,) = rt.child_pids()
    assert replacement != first
    assert rt.is_alive(replacement)
    with pytest.raises(ValueError):
        rt.watch(replacement, "sometimes")


def test_seed_path_supervisor(rt, until):
    pid = rt.spawn_with_path_observed(10, "/svc/test/one")
    assert rt.whereis_path("/svc/test/one") == pid
    sup = rt.create_path_supervisor("/svc/test")
    assert isinstance(sup, int)
    rt.path_supervisor_watch("/svc/test", pid)
    assert rt.path_supervisor_children("/svc/test") == [pid]
    assert rt.remove_path_supervisor("/svc/test") is True
    assert rt.remove_path_supervisor("/svc/test") is False
    assert rt.path_supervisor_children("/svc/test") == []
    assert rt.is_alive(pid)
    with pytest.raises(iris.InvalidPathError):
        rt.spawn_with_path_observed(10, "bad//path")


def test_path_supervise_with_factory_reregisters(rt, until):
    def make():
        pid = rt.spawn(lambda m: 1 / 0)
        return pid

    first = make()
    rt.register_path("/svc/pay/worker", first)
    rt.create_path_supervisor("/svc/pay")
    rt.path_supervise_with_factory("/svc/pay", first, make, "restartone")
    rt.send(first, b"crash")
    assert until(
        lambda: rt.whereis_path("/svc/pay/worker") not in (None, first)
    )
    assert rt.path_supervisor_children("/svc/pay") == [rt.whereis_path("/svc/pay/worker")]
