"""Who uses a load's folder in the state directory, and who exports into it. Every process that has
scheduled one of the load's tasks holds a shared lock on the folder's ``.lock`` for as long as it lives (the
kernel drops it when the process dies). A published load's chunk set, or a stale load's folder, is removed
only when no other process holds it; otherwise it is left for a later publish to remove - so two runs of the
same load at once never pull the chunks from under each other. An export in progress holds its own folder's
lock the same way (``exporting``)."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .model.load import Load

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


@contextmanager
def exporting(load: Load) -> Iterator[Path]:
    """A fresh export folder, held by this process with a lock that the kernel releases when the process dies:
    the folders that exports of the load left behind are removed, those of exports still running are not."""
    for stale in load.export_folders():
        with open(load.export_lock(stale), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process exports this load right now
            shutil.rmtree(stale, ignore_errors=True)
            load.export_lock(stale).unlink(missing_ok=True)
    tmp = load.new_export_folder()
    with open(load.export_lock(tmp), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # before the folder exists, so nobody sees it unlocked
        tmp.mkdir()
        try:
            yield tmp
        finally:
            load.export_lock(tmp).unlink(missing_ok=True)
