"""``python -m pipeline status``: where every configured table's load stands.

Reads only the state directory and the ledger, so it works after a crash, before a
rerun, and while a load runs in another process.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import NamedTuple

from . import scheduling
from .errors import PipelineError
from .model.naming import TableName
from .model.plan import Plan
from .postgres import client, quarantine, state
from .source import catalog


class TableStatus(NamedTuple):
    table: str
    load_id: str
    state: str
    chunks_done: int
    chunks_total: int | None
    rows_loaded: int
    rows_expected: int | None
    elapsed_s: float | None
    eta_s: float | None
    quarantined: int = 0  # rows of the table in the quarantine (``badrows``)


def _resolved(spec: catalog.TableSpec) -> catalog.TableSpec:
    """A table's entry with its settings resolved as a run resolves them (``catalog.resolve``)."""
    return catalog.resolve(spec.table, spec.source, spec.chunk_rows, spec.options.mode, ",".join(spec.options.key))


def table_status(conn, spec: catalog.TableSpec) -> TableStatus:
    try:
        load, removed, _ = scheduling.schedule(_resolved(spec), write=False)
    except PipelineError as exc:
        return TableStatus(spec.table, "-", f"cannot load: {exc}", 0, None, 0, None, None, None)
    if load is None:  # append or merge mode, no new file
        load_id, rows = state.published_load(conn, TableName.parse(spec.table)) or ("-", 0)
        done = "appended" if spec.options.mode == "append" else "merged"
        where = f"{len(removed):,} removed files' rows to delete" if removed else f"{done}, up to date"
        return TableStatus(spec.table, load_id, where, 0, None, rows, rows, None, None)
    published = state.published_load(conn, load.target)
    chunks_done, rows_loaded = state.LoadState.of(load).progress(conn)
    if published and published[0] == load.load_id and not load.incremental:
        return TableStatus(spec.table, load.load_id, "published, up to date", chunks_done, chunks_done,
                           published[1], published[1], None, None)
    if not load.plan_file.exists():
        where = "source changed, not started" if published else "not started"
        if load.incremental:
            where = "new files, not started"
        return TableStatus(spec.table, load.load_id, where, 0, None, 0, None, None, None)
    plan = Plan.from_json(load.plan_file.read_text())
    elapsed = time.time() - load.plan_file.stat().st_mtime
    if load.verified_file.exists():
        where = "verified, publishing"
    elif load.manifest_file.exists():
        where = "copying chunks"
    elif load.export_folders():
        where = "exporting and copying chunks" if chunks_done else "exporting CSV chunks"
    else:
        where = "planned"
    eta = None
    if 0 < rows_loaded < plan.total_rows:
        eta = elapsed * (plan.total_rows - rows_loaded) / rows_loaded
    return TableStatus(spec.table, load.load_id, where, chunks_done, len(plan.chunks), rows_loaded,
                       plan.total_rows, elapsed, eta)


def _seconds(value: float | None) -> str:
    return "-" if value is None else str(dt.timedelta(seconds=round(value)))


def _of(done: int, total: int | None) -> str:
    return f"{done:,}" if total is None else f"{done:,}/{total:,}"


def render(rows: list[TableStatus]) -> str:
    header = ("table", "load", "state", "chunks", "rows", "elapsed", "eta", "quarantined")
    return table_text(header, [(s.table, s.load_id, s.state, _of(s.chunks_done, s.chunks_total),
                                _of(s.rows_loaded, s.rows_expected), _seconds(s.elapsed_s), _seconds(s.eta_s),
                                f"{s.quarantined:,}" if s.quarantined else "-") for s in rows])


def render_pending() -> str:
    """Per configured table, its rows and last publish, and the folder's files against those recorded as published
    into it."""
    header = ("table", "mode", "rows", "last publish", "recorded", "new", "rewritten", "removed", "being written")
    lines = []
    with client.connection() as conn:
        for spec in catalog.load_tables():
            rows, at = state.last_publish(conn, TableName.parse(spec.table)) or (None, None)
            held = (f"{rows:,}", at.strftime("%Y-%m-%d %H:%M:%S")) if at else ("-", "-")
            try:
                found, recorded = scheduling.pending(_resolved(spec))
            except PipelineError as exc:
                lines.append((spec.table, spec.options.mode, *held, f"cannot tell: {exc}", "", "", "", ""))
                continue
            what = {"delete": " (rows to delete)", "keep": " (rows kept)"}.get(spec.on_removed, "")
            lines.append((spec.table, spec.options.mode, *held, f"{len(recorded):,}", f"{len(found.new):,}",
                          f"{len(found.rewritten):,}", f"{len(found.removed):,}{what if found.removed else ''}",
                          f"{len(found.incomplete):,}"))
    return table_text(header, lines)


def table_text(header: tuple, lines: list[tuple]) -> str:
    """Lines of values in aligned columns, under a header."""
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *lines])


def status() -> list[TableStatus]:
    with client.connection() as conn:
        bad = quarantine.counts(conn)
        return [table_status(conn, spec)._replace(quarantined=bad.get(tuple(TableName.parse(spec.table)), 0))
                for spec in catalog.load_tables()]
