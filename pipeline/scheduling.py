"""Which load brings a table up to date: in ``replace`` mode the whole folder as it is now; in ``append`` and
``merge`` modes the files not yet recorded as published into the table (``source.increment``), or nothing.

An increment is fixed when it is scheduled: its files are written to the load's ``files.json``, so files
arriving while it loads wait for the next run instead of changing the load under way."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from . import folders
from .errors import SourceError
from .model.load import INCREMENT, Load
from .model.plan import SourceFile
from .postgres import client, state
from .source import catalog, increment
from .source.listing import fingerprint, list_files

log = logging.getLogger(__name__)


def pending(spec: catalog.TableSpec) -> tuple[increment.Pending, dict[str, state.Recorded]]:
    """The folder's files sorted against those recorded for the table, and those recorded - none when the table
    holds no load (then every file is new, and the increment will be the whole table)."""
    files = list_files(spec.source)
    target = Load(spec.table, spec.source, spec.chunk_rows, "").target
    with client.connection() as conn:
        held, recorded = state.recorded_files(conn, target)
    if held and not recorded:
        raise SourceError(f"{spec.table} was published before the pipeline recorded the files it loads; load it "
                          "once with --mode replace, then append")
    recorded = recorded if held else {}
    return increment.pending(spec.source, files, recorded), recorded


def refusal(spec: catalog.TableSpec, found: increment.Pending) -> str | None:
    """Why an increment cannot be taken: a recorded file was rewritten or removed."""
    for names, what in ((found.rewritten, "was rewritten"), (found.removed, "was removed")):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            return (f"file {os.path.join(spec.source, names[0])!r}{more} {what} after its rows were loaded into "
                    f"{spec.table}; nothing was loaded - run it with --mode replace to reload the folder")
    return None


def next_load(table: str, source: str = "", chunk_rows: int = 0, mode: str = "", key: str = "",
              write: bool = True) -> Load | None:
    """The load that brings ``table`` up to date, or None when an increment would hold no file. ``write``: fix an
    increment's files in its ``files.json`` (scheduling it); without, only say which load it would be."""
    spec = catalog.resolve(table, source, chunk_rows, mode, key)
    if spec.mode == "replace":
        return Load(spec.table, spec.source, spec.chunk_rows, fingerprint(list_files(spec.source)))
    found, recorded = pending(spec)
    problem = refusal(spec, found)
    if problem:
        raise SourceError(problem)
    if found.incomplete and write:
        log.info("%s: %d new file(s) still being written (no footer yet), left for the next run: %s", spec.table,
                 len(found.incomplete), ", ".join(repr(n) for n in found.incomplete[:3]))
    if not found.new:
        if write:
            log.info("%s: no new file in %r; nothing to %s", spec.table, spec.source, spec.mode)
            tidy(Load(spec.table, spec.source, spec.chunk_rows, "").table_dir, recorded)
        return None
    load = Load(spec.table, spec.source, spec.chunk_rows, fingerprint(found.new), spec.mode, spec.key)
    if write and not load.increment_file.exists():
        load.folder.mkdir(parents=True, exist_ok=True)
        tmp = load.folder / f".files.json.{os.getpid()}"
        tmp.write_text(json.dumps({"whole_table": not recorded, "files": [asdict(f) for f in found.new]}))
        os.replace(tmp, load.increment_file)
    return load


def increment_files(load: Load) -> tuple[list[SourceFile], bool]:
    """The files of a scheduled increment, as they were listed when it was scheduled, and whether they are the
    whole table (it held no load then)."""
    increment = json.loads(load.increment_file.read_text())
    return [SourceFile(**f) for f in increment["files"]], increment["whole_table"]


def tidy(table_dir: Path, recorded: dict, keep: Path | None = None) -> None:
    """Remove the folders, staging tables and ledger rows of a table's increments (but ``keep``) that hold a file
    now recorded - published (a kill left their folder) or superseded by another increment (they can never be
    published) - unless a process still runs them (``folders``)."""
    if not table_dir.is_dir():
        return
    for folder in table_dir.iterdir():
        if folder == keep:
            continue
        try:
            names = {f["name"] for f in json.loads((folder / INCREMENT).read_text())["files"]}
        except (FileNotFoundError, NotADirectoryError):  # not an increment, or another process tidied it just now
            continue
        if names & recorded.keys():
            folders.remove(folder, folder, first=lambda load_id=folder.name: client.with_retries(
                lambda conn: state.drop_load(conn, load_id), f"removing load {load_id}"))
