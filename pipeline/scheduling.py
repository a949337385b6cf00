"""Which load brings a table up to date: in ``replace`` mode the whole folder as it is now; in ``append`` and
``merge`` modes the files not yet recorded as published into the table (``source.increment``), or nothing.

An increment is fixed when it is scheduled: its files are written to the load's ``files.json``, so files
arriving while it loads wait for the next run instead of changing the load under way. With a
``source_file_column`` a rewritten file is in the increment again (its earlier rows are replaced), and with
``on_removed = "delete"`` a removed file's rows are deleted (``Schedule.removed``); else either stops the run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from . import folders
from .errors import SourceError
from .model.load import INCREMENT, Load
from .model.naming import TableName
from .postgres import client, state
from .source import catalog, increment
from .source.listing import fingerprint, list_files

log = logging.getLogger(__name__)


def pending(spec: catalog.TableSpec) -> tuple[increment.Pending, dict[str, state.Recorded]]:
    """The folder's files sorted against those recorded for the table, and those recorded - none when the table
    holds no load (then every file is new, and the increment will be the whole table)."""
    files = list_files(spec.source)
    target = TableName.parse(spec.table)
    with client.connection() as conn:
        held, recorded = state.recorded_files(conn, target)
    if held and not recorded:
        raise SourceError(f"{spec.table} was published before the pipeline recorded the files it loads; load it "
                          "once with --mode replace, then append")
    recorded = recorded if held else {}
    return increment.pending(spec.source, files, recorded, spec.settle_seconds), recorded


def refusal(spec: catalog.TableSpec, found: increment.Pending) -> str | None:
    """Why an increment cannot be taken: a recorded file was rewritten or removed, and config/ does not say
    what to do then."""
    appending = spec.options.mode == "append"
    # a merge cannot take a file again: deleting its earlier rows would lose those it replaced in earlier files
    reloads = spec.options.source_file_column and appending
    rewritten_remedy = " (or declare source_file_column in config/)" if appending else ""
    refused = (([] if reloads else [f.name for f in found.rewritten], "was rewritten", rewritten_remedy),
               (found.removed if spec.on_removed == "refuse" else [], "was removed",
                " (or declare on_removed in config/)"))
    for names, what, remedy in refused:
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            return (f"file {os.path.join(spec.source, names[0])!r}{more} {what} after its rows were loaded into "
                    f"{spec.table}; nothing was loaded - run it with --mode replace to reload the folder{remedy}")
    return None


class Schedule(NamedTuple):
    """What brings a table up to date: a load (None: no file to load), and the recorded files whose rows are to
    be deleted, removed from the folder (``on_removed = "delete"``)."""

    load: Load | None
    removed: list[str]
    spec: catalog.TableSpec  # the settings it was made from


def schedule(spec: catalog.TableSpec, write: bool = True) -> Schedule:
    """What brings the table of ``spec`` (``catalog.resolve``) up to date. ``write``: fix an increment's files in
    its ``files.json`` (scheduling it); without, only say which load it would be."""
    if not spec.options.incremental:
        return Schedule(Load(spec.table, spec.source, spec.chunk_rows, fingerprint(list_files(spec.source)),
                             spec.options), [], spec)
    found, recorded = pending(spec)
    problem = refusal(spec, found)
    if problem:
        raise SourceError(problem)
    removed = found.removed if spec.on_removed == "delete" else []
    if found.incomplete and write:
        log.info("%s: %d new file(s) still being written (no footer yet, or changed in the last %g s), left for the "
                 "next run: %s", spec.table, len(found.incomplete), spec.settle_seconds,
                 ", ".join(repr(n) for n in found.incomplete[:3]))
    files = sorted(found.new + found.rewritten, key=lambda f: f.name)
    if not files:
        if write:
            log.info("%s: no new file in %r; nothing to %s", spec.table, spec.source, spec.options.mode)
            remove_superseded(Load(spec.table, spec.source, spec.chunk_rows, "").table_dir, recorded)
        return Schedule(None, removed, spec)
    load = Load(spec.table, spec.source, spec.chunk_rows, fingerprint(files), spec.options)
    if write and not load.increment_file.exists():
        load.folder.mkdir(parents=True, exist_ok=True)
        earlier = {f.name: list(recorded[f.name][:3]) for f in found.rewritten}  # size, mtime_ns, digest
        increment.Increment(files, not recorded, earlier).write(load.increment_file)
    return Schedule(load, removed, spec)


def remove_superseded(table_dir: Path, recorded: dict, keep: Path | None = None) -> None:
    """Remove the folders, staging tables and ledger rows of a table's increments (but ``keep``) that hold a file
    now recorded - published (a kill left their folder) or superseded by another increment (they can never be
    published) - unless a process still runs them (``folders``)."""
    if not table_dir.is_dir():
        return
    for folder in table_dir.iterdir():
        if folder == keep:
            continue
        try:
            found = increment.Increment.read(folder / INCREMENT)
        except (FileNotFoundError, NotADirectoryError):  # not an increment, or another process removed it just now
            continue
        # a file recorded otherwise than the increment found it: a new one recorded, a rewritten one recorded again
        if any(f.name in recorded and list(recorded[f.name][:3]) != found.rewritten.get(f.name) for f in found.files):
            folders.remove(folder, folder, first=lambda load_id=folder.name: client.with_retries(
                lambda conn: _forget(conn, load_id), f"removing load {load_id}"))


def _forget(conn, load_id: str) -> None:
    with client.transaction(conn, f"removing load {load_id}") as cur:
        state.forget_load(cur, load_id)
