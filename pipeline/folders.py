"""Who uses a load's folder in the state directory: every process that has scheduled one of the load's tasks
holds a shared lock on the folder's ``.lock`` for as long as it lives (the kernel drops it when the process
dies). A published load's chunk set, or a stale load's folder, is removed only when no other process holds
it; otherwise it is left for a later publish to remove - so two runs of the same load at once never pull the
chunks from under each other."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

_held: dict[Path, IO] = {}
LOCK = ".lock"


def hold(folder: Path) -> None:
    """Hold the load folder for this process (created if missing)."""
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / LOCK, "a")  # noqa: SIM115 - kept open for the process's life
    fcntl.flock(lock, fcntl.LOCK_SH)
    _held[folder] = lock


def remove(path: Path, folder: Path, first: Callable[[], None] | None = None) -> bool:
    """Remove ``path`` - the load ``folder`` itself or a part of it - unless another process holds the folder;
    whether it did. ``first`` runs before, while the folder is held for the removal: what must not outlive the
    folder (a kill between the two leaves the folder, so the removal is tried again)."""
    mine = _held.get(folder)
    try:
        lock = mine or open(folder / LOCK, "a")  # noqa: SIM115 - closed below
    except FileNotFoundError:  # the folder is gone already (another process removed it)
        return True
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not mine:
            lock.close()
        return False
    try:
        if first:
            first()
        shutil.rmtree(path, ignore_errors=True)
    finally:
        if mine and path != folder:
            fcntl.flock(lock, fcntl.LOCK_SH)
        else:
            _held.pop(folder, None)
            lock.close()
    return True
