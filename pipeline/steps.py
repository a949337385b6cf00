"""What the tasks of a load do, as plain functions of the load and a ``report(message, percent)`` for
progress: export the chunks (copying each as soon as it is written), copy one chunk, measure the loaded
rows and judge them, publish and clean up. ``tasks`` wires them into Luigi's graph."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import luigi

from . import budget, config, engines, faults, folders, scheduling
from .engines import arrow
from .engines.core import CHECKSUM
from .errors import DatabaseError, ExportError, SourceError, VerificationError, explain
from .model.chunk import Chunk, Manifest
from .model.load import Load
from .model.plan import Plan
from .postgres import client, merge, modes, staging, state
from .postgres.writes import Published
from .source.increment import files_holding
from .verification.stats import CHECKSUM_ONLY, Stats, changed_columns, combine, differences

log = logging.getLogger(__name__)
Report = Callable[..., None]


def export(load: Load, plan: Plan, report: Report, copiers: int) -> None:
    """Export every chunk into a fresh folder, renamed to the load's chunk set with its manifest when
    complete. With ``[export] copy_during_export`` each chunk is copied as soon as it is written, over
    ``copiers`` connections; a chunk not copied here is left to its own copy task."""
    with folders.exporting(load) as tmp:
        _export_into(load, plan, report, copiers, tmp)


def _export_into(load: Load, plan: Plan, report: Report, copiers: int, tmp: Path) -> None:
    started = time.monotonic()
    total = len(plan.chunks)
    exported: list[int] = []
    copied: list[int] = []

    def progress() -> None:
        report(f"exported {len(exported)}/{total} chunks · copied {len(copied)}/{total} · "
               f"{time.monotonic() - started:.1f} s", 100 * len(exported) / total)

    def copy_now(index: int) -> None:
        try:
            copy_chunk(load, plan, index, tmp, report, early=True)
        except Exception as exc:  # noqa: BLE001 - the chunk's own task retries it and reports what fails
            log.warning("%s: chunk %d was not copied during the export (%s); its copy task will retry",
                        plan.table, index, explain(exc) or repr(exc))
            return
        copied.append(index)
        progress()

    early = config.export().copy_during_export
    quarantined = 0
    with ThreadPoolExecutor(max_workers=max(1, copiers)) if early else nullcontext() as copies:
        def exported_chunk(index: int, stats: Stats) -> None:
            nonlocal quarantined
            for problem in stats.refusals(plan.columns):
                raise ExportError(f"{plan.table} cannot be loaded: chunk {index} (source "
                                  f"{plan.describe_chunk(index)}) holds {problem}; nothing was published")
            quarantined += stats.quarantined
            if plan.quarantine and quarantined > plan.budget:
                budget.over_budget(plan, quarantined,
                                   [tmp / Chunk(plan.load_id, i).dirname for i in [*exported, index]],
                                   complete=len(exported) + 1 == total)
            exported.append(index)
            progress()
            if early:
                copies.submit(copy_now, index)

        stats = engines.export_chunks(plan, tmp, exported_chunk)
    Manifest(plan.load_id, CHECKSUM, [plan.chunk_rows(i) for i in range(total)], stats).write(tmp)
    try:
        os.rename(tmp, load.chunk_set)
    except OSError:  # another process published the same (deterministic) chunk set first: keep it
        if not load.manifest_file.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    report(f"{total} {'binary' if engines.binary_chunks(plan) else 'CSV'} chunks · {plan.total_rows:,} rows · "
           f"{len(copied)} copied during the export · {time.monotonic() - started:.1f} s", 100)


def copy_chunk(load: Load, plan: Plan, index: int, chunk_set: Path, report: Report, early: bool = False) -> None:
    """COPY chunk ``index`` of ``chunk_set`` into the load's staging table exactly once (the ledger
    decides) and mark it copied. ``early``: a copy made by the export, reported to the log only and
    left unmarked, so that the chunk's own task still runs (in a moment) and shows in the visualiser."""
    chunk = Chunk(load.load_id, index)
    rows = plan.chunk_rows(index)
    label = f"chunk {index + 1}/{len(plan.chunks)}"
    say = (lambda message, percent=None: log.info("%s: %s", plan.table, message)) if early else report
    started = time.monotonic()
    say(f"{label} · copying {rows:,} rows", 0)
    outcome = staging.copy_once(plan, chunk, chunk.files(chunk_set))
    faults.point("copy.after_commit")
    seconds = time.monotonic() - started
    if not early:
        with luigi.LocalTarget(load.copied_file(chunk.dirname)).open("w") as f:
            json.dump({"rows": rows, "seconds": round(seconds, 3), "outcome": outcome}, f)
    say(f"{label} · {rows:,} rows · {seconds:.1f} s · {outcome}", 100)
    faults.point("copy.done")


def publish(plan: Plan) -> Published:
    """Publish the verified load in its mode's way (``postgres.modes``). A key twice in a merge is named with the
    files holding it."""
    writer = modes.writer(plan.mode)
    try:
        return client.with_retries(lambda conn: writer.publish(conn, plan), f"publishing {plan.table}")
    except merge.DuplicateKey as dup:
        files = ", ".join(repr(name) for name in files_holding(plan, dup.fields))
        raise SourceError(f"{dup} ({files}); nothing was published - a merge key must be unique among the files "
                          "a run takes") from None


def sentence(plan: Plan, done: Published) -> str:
    """What a publish did, in words."""
    if done.already:
        return f"load {plan.load_id} was already published by another process"
    made = f"; made the {', '.join(done.made)} config/ declares" if done.made else ""
    made += f"; made an {', '.join(done.needed)}" if done.needed else ""
    if done.mode == "replace":
        bad = f" ({done.quarantined:,} quarantined: python -m pipeline quarantine {plan.table})" if done.quarantined \
            else ""
        return f"published {done.rows:,} rows{bad}{made}"
    files = f"{done.loaded:,} rows from {done.files:,} files"
    if done.duplicates:
        files += f" ({done.duplicates:,} earlier rows of a key left out)"
    if done.quarantined:
        files += f" ({done.quarantined:,} bad rows quarantined)"
    added = done.loaded - done.duplicates - done.replaced
    said = f"merged {files}: {done.replaced:,} replaced, {added:,} added" if done.mode == "merge" else \
        f"appended {files}"
    if done.deleted:
        said += f", after deleting the {done.deleted:,} rows of {done.rewritten:,} rewritten files"
    return f"{said}{made}; the table holds {done.rows:,}"


def remove_published(load: Load) -> None:
    """After a publish: remove the load's chunk set (its small records stay until the next publish) and the folders
    of the table's loads it superseded - for a replace every other; for an increment those holding a file now
    recorded (``scheduling.remove_superseded``)."""
    if load.incremental:
        _, recorded = client.with_retries(lambda conn: state.recorded_files(conn, load.target), "reading the record")
        scheduling.remove_superseded(load.table_dir, recorded, keep=load.folder)
    else:
        for other in load.table_dir.iterdir():
            if other != load.folder:
                folders.remove(other, other)
    folders.remove(load.chunk_set, load.folder)


def verify(load: Load, plan: Plan, manifest: Manifest, report: Report) -> dict | None:
    """Measure the staging table and judge it against the source (``verdict``): the record
    for ``verified.json``, or None when another process has published the load meanwhile."""

    published_meanwhile = state.LoadState.of(load).published

    def measure(conn) -> tuple[Stats, int, int, list] | None:
        if published_meanwhile(conn):
            return None
        try:
            return staging.load_stats(conn, plan, manifest.checksum)
        except DatabaseError:
            if published_meanwhile(conn):  # just now: the publish took the staging table
                return None
            raise

    started = time.monotonic()
    found = client.with_retries(measure, f"verifying {plan.table}")
    scan_seconds = round(time.monotonic() - started, 3)
    if found is None:
        return None

    def column_sums() -> tuple[dict[int, int], dict[int, int]]:
        report("the row checksum differs: reading the source again to find the column(s)", 100)
        return arrow.column_checksums(plan), client.with_retries(
            lambda conn: staging.column_checksums(conn, plan), f"checking {plan.table}")

    loaded, ledger_rows, ledger_chunks, refused = found
    return {**verdict(plan, manifest, loaded, ledger_rows, ledger_chunks, column_sums,
                      arrow.rows_stats(plan, refused, manifest.checksum)), "scan_seconds": scan_seconds}


def verdict(plan: Plan, manifest: Manifest, staged: Stats, ledger_rows: int, ledger_chunks: int,
            column_sums: Callable[[], tuple[dict[int, int], dict[int, int]]], refused: Stats | None = None) -> dict:
    """The record of a verified load (``verified.json``), or ``VerificationError`` naming the difference.
    ``column_sums``: (source, loaded) per-column checksums, read only to name the columns when nothing but
    the row checksum differs. ``refused``: the source statistics of the rows COPY refused (a budget)."""
    where = f"{plan.table} (source {plan.source!r}) does not verify"
    source = combine(manifest.chunk_stats, plan.columns)
    # every source row is loaded, refused by COPY or set aside by the export - each quarantined
    loaded = staged + (refused or Stats.empty(plan.columns))
    counts = (plan.total_rows, manifest.rows, loaded.rows + loaded.quarantined, source.rows + source.quarantined)
    chunks = len(manifest.chunk_rows)
    if (len(set(counts)) != 1 or ledger_rows != staged.rows or ledger_chunks != chunks
            or source.quarantined != loaded.quarantined):
        held = (f" and {loaded.quarantined:,} in its quarantine where the export set aside {source.quarantined:,}"
                if plan.quarantine else "")
        raise VerificationError(
            f"{where}: the source has {counts[0]:,} rows, the chunk manifest {counts[1]:,}, PostgreSQL "
            f"{staged.rows:,}{held} (ledger: {ledger_rows:,} rows in {ledger_chunks} of {chunks} chunks); "
            "nothing was published")
    problems = differences(plan.columns, source, loaded)
    if problems == [CHECKSUM_ONLY]:
        problems = [changed_columns(plan.columns, *column_sums())]
    if problems:
        raise VerificationError(f"{where}: {'; '.join(problems)}; nothing was published")
    return {"source_rows": counts[0], "manifest_rows": counts[1], "source": source.to_json(),
            "loaded": loaded.to_json()}
