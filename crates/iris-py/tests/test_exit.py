"""The interpreter exits cleanly while actors are still at work.

Each script runs in a fresh interpreter and ends while a handler is busy; before the exit
hook, CPython ended the runtime thread that took the interpreter lock back during
finalization, and the process aborted ("Fatal Python error", SIGABRT).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPTS = {
    "push handler busy in a batch": """
        def handler(msg):
            time.sleep(0.001)
        pid = rt.spawn(handler)
        for _ in range(1000):
            rt.send(pid, b"x")
        time.sleep(0.01)
    """,
    "release_gil handler busy": """
        def handler(msg):
            time.sleep(0.001)
        pid = rt.spawn(handler, release_gil=True)
        for _ in range(1000):
            rt.send(pid, b"x")
        time.sleep(0.01)
    """,
    "pull actor waiting in recv": """
        def body(mailbox):
            while True:
                mailbox.recv()
        pid = rt.spawn_with_mailbox(body)
        rt.send(pid, b"x")
        time.sleep(0.05)
    """,
    "pull actor in Python code that outlives the script": """
        go = threading.Event()
        def body(mailbox):
            go.wait()
            time.sleep(0.05)
        pid = rt.spawn_with_mailbox(body)
        time.sleep(0.05)
        go.set()
    """,
    "two runtimes, one busy in a long call": """
        other = iris.Runtime()
        def slow(msg):
            time.sleep(0.3)
        other.send(other.spawn(slow), b"x")
        pid = rt.spawn(lambda m: None)
        rt.send(pid, b"x")
        time.sleep(0.05)
    """,
}


def run_script(source: str) -> "subprocess.CompletedProcess[str]":
    """Runs `source` (dedented) in a fresh interpreter, which must exit cleanly."""
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"exit code {r.returncode}\n{r.stderr}"
    assert "Fatal Python error" not in r.stderr, r.stderr
    return r


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_interpreter_exits_cleanly_with_actors_at_work(name):
    prelude = "import threading, time\nimport iris\nrt = iris.Runtime()\n"
    for _ in range(3):
        run_script(prelude + textwrap.dedent(SCRIPTS[name]))


# A runtime whose actor `busy` has 200 messages of a millisecond each ahead of it.
BUSY = """
import os, sys, time, iris
rt = iris.Runtime()
busy = rt.spawn(lambda m: time.sleep(0.001))
for _ in range(200):
    rt.send(busy, b"x")
"""


def test_the_exit_hook_ends_the_actors_with_shutdown():
    r = run_script(
        BUSY
        + """
print(iris._iris._at_exit())
print(rt.is_alive(busy), rt.join(busy, timeout=1).reason)
"""
    )
    assert r.stdout.split() == ["True", "False", "Shutdown"]


def test_a_forked_child_leaves_at_once_and_can_make_its_own_runtime():
    # The parent's runtime threads stay in the parent: the inherited runtime refuses to
    # start or feed actors (they would never run), and the child's exit hook must not wait
    # for the actors it inherited (it waited out its five seconds and returned False).
    r = run_script(
        BUSY
        + textwrap.dedent(
            """
        child = os.fork()
        if child == 0:
            refused = []
            for call in (lambda: rt.spawn(lambda m: None), lambda: rt.send(busy, b"x")):
                try:
                    call()
                except iris.IrisError as e:
                    refused.append("os.fork()" in str(e))
            del rt  # dropped in the child: forgotten, nothing of it runs here
            fresh = iris.Runtime()
            got = []
            def handler(m):
                got.append(m)
                return iris.STOP
            pid = fresh.spawn(handler)
            fresh.send(pid, b"y")
            reason = fresh.join(pid, timeout=5).reason
            print("child", refused, iris._iris._at_exit(), reason, got, flush=True)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        print("parent", status, rt.is_alive(busy), flush=True)
        """
        )
    )
    lines = sorted(r.stdout.splitlines())
    assert lines == [
        "child [True, True] True Normal [b'y']",
        "parent 0 True",
    ], r.stdout + r.stderr
