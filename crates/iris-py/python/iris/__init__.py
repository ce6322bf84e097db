"""Iris: a BEAM-style actor runtime with a Rust core.

Push actors (``Runtime.spawn``) run a handler per message; pull actors
(``Runtime.spawn_with_mailbox``) block in ``Mailbox.recv()`` on their own thread
with the GIL released. See ``help(iris.Runtime)``.
"""

from __future__ import annotations

from typing import Callable, List, Optional

from ._iris import (
    STOP,
    ConfigError,
    ExitInfo,
    InvalidPathError,
    IrisError,
    Mailbox,
    MailboxClosed,
    MeshError,
    NoProcessError,
    PySystemMessage,
    RegistryError,
    Runtime,
    SpawnError,
    StopSignal,
    current_pid,
    version,
)
from . import jit
from .jit import JitLimitError, offload

__version__ = version()

__all__ = [
    "STOP",
    "ConfigError",
    "ExitInfo",
    "InvalidPathError",
    "JitLimitError",
    "IrisError",
    "Mailbox",
    "MailboxClosed",
    "MeshError",
    "NoProcessError",
    "PySystemMessage",
    "RegistryError",
    "Runtime",
    "SpawnError",
    "offload",
    "jit",
    "StopSignal",
    "current_pid",
    "spawn_child_pool",
    "version",
]


def spawn_child_pool(
    rt: Runtime,
    parent: int,
    size: int = 4,
    handler: Optional[Callable[[object], object]] = None,
    budget: int = 100,
) -> List[int]:
    """Spawns ``size`` long-lived push workers under ``parent`` and returns their PIDs.

    Same as ``rt.spawn_child_pool(parent, size, handler, budget)``.
    """
    return rt.spawn_child_pool(parent, size, handler, budget)
