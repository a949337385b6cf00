"""The Luigi task graph.

    IngestAll -> IngestTable -> PublishTable -> VerifyRowCount -> CopyChunkToPostgres x N
                                                              \\-> ExportCsvChunks -> SparkReadParquet

Every task of a load carries the same four parameters (table, source, chunk_rows and the
source's fingerprint), so its id names *what* is loaded; where the state lives and how
many workers run are settings, not parameters. Changing a source file changes the
fingerprint, hence every task id, hence makes a new load.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path

import luigi

from . import catalog, export, faults, pg, settings, source, verify
from .chunks import Chunk, read_manifest, write_manifest
from .errors import ChunkAlreadyLoaded, ExportError, VerificationError, explain
from .layout import Load
from .naming import TableName

log = logging.getLogger(__name__)

# Parameter order is creation order; it is the order a task shows its parameters in logs and the visualiser.
_TABLE = luigi.Parameter(description="Target table, schema.table")
_CHUNK = luigi.IntParameter(description="Index of the chunk in the load's chunk set")
_SOURCE = luigi.Parameter(description="Folder of Parquet files (absolute path)")
_CHUNK_ROWS = luigi.IntParameter(description="Rows per CSV chunk, about")
_FINGERPRINT = luigi.Parameter(description="Digest of the source files' names, sizes and mtimes")


def _fmt(n: int) -> str:
    return f"{n:,}"


class LoadTask(luigi.Task):
    """Shared by every task of one load."""

    table = _TABLE
    source = _SOURCE
    chunk_rows = _CHUNK_ROWS
    fingerprint = _FINGERPRINT

    @property
    def load_params(self) -> dict:
        return self.load._asdict()

    @cached_property
    def load(self) -> Load:
        return Load(self.table, self.source, self.chunk_rows, self.fingerprint)

    @property
    def load_id(self) -> str:
        return self.load.load_id

    @property
    def load_dir(self) -> Path:
        return self.load.folder

    @property
    def chunk_set(self) -> Path:
        return self.load.chunk_set

    def plan(self) -> source.Plan:
        return source.Plan.from_json(self.load.plan_file.read_text())

    def report(self, message: str, percent: float | None = None) -> None:
        """Progress for the visualiser (only inside a worker) and the log."""
        log.info("%s: %s", self.table, message)
        if self.set_status_message:
            self.set_status_message(message)
        if percent is not None and self.set_progress_percentage:
            self.set_progress_percentage(round(percent))

    def on_failure(self, exception: BaseException) -> str:
        """What the visualiser shows: the sentence for an expected failure, the traceback for a bug."""
        return explain(exception) or super().on_failure(exception)


class SparkReadParquet(LoadTask):
    """Plan the load: files, row counts and schema from the Parquet footers; the chunks."""

    def output(self):
        return luigi.LocalTarget(self.load.plan_file)

    def run(self):
        plan = source.make_plan(self.load_id, self.table, self.source, self.fingerprint, self.chunk_rows)
        pg.with_retries(lambda conn: pg.check_can_publish(conn, TableName.parse(self.table)),
                        f"checking rights on {self.table}")
        self.load_dir.mkdir(parents=True, exist_ok=True)
        with self.output().open("w") as f:
            f.write(plan.to_json())
        self.report(f"{_fmt(len(plan.files))} files · {_fmt(plan.total_rows)} rows · "
                    f"{len(plan.columns)} columns · {len(plan.chunks)} chunks", 100)


class ExportCsvChunks(LoadTask):
    """Export every chunk as CSV; the chunk set and its manifest appear at once.

    With ``[export] copy_during_export`` (the default) a chunk is copied into PostgreSQL as soon
    as it is written, up to ``--workers`` at a time, while later chunks are still being exported;
    a chunk not copied here (a copy failed, the process died) is left to its ``CopyChunkToPostgres``."""

    def requires(self):
        return SparkReadParquet(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.chunk_set / "_manifest.json")

    def run(self):
        plan = self.plan()
        for stale in self.load_dir.glob("chunks.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.load_dir / f"chunks.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        started = time.monotonic()
        total = len(plan.chunks)
        exported: list[int] = []
        copied: list[int] = []

        def progress() -> None:
            self.report(f"exported {len(exported)}/{total} chunks · copied {len(copied)}/{total} · "
                        f"{time.monotonic() - started:.1f} s", 100 * len(exported) / total)

        def copy_now(index: int) -> None:
            try:
                copy_chunk(self, plan, index, tmp, early=True)
            except Exception as exc:  # noqa: BLE001 - the chunk's own task retries it and reports what fails
                log.warning("%s: chunk %d was not copied during the export (%s); its copy task will retry",
                            self.table, index, explain(exc) or repr(exc))
                return
            copied.append(index)
            progress()

        early = settings.export().copy_during_export
        pool = ThreadPoolExecutor(max_workers=max(1, luigi.interface.core().workers)) if early else nullcontext()
        with pool as copies:
            def exported_chunk(index: int, stats: dict) -> None:
                for problem in verify.refusals(plan.columns, stats):
                    raise ExportError(f"{self.table} cannot be loaded: chunk {index} (source "
                                      f"{plan.describe_chunk(index)}) holds {problem}; nothing was published")
                exported.append(index)
                progress()
                if early:
                    copies.submit(copy_now, index)

            stats = export.export_chunks(plan, tmp, exported_chunk)
        write_manifest(tmp, plan.load_id, [plan.chunk_rows(i) for i in range(total)], stats, export.engine().CHECKSUM)
        try:
            os.rename(tmp, self.chunk_set)
        except OSError:  # another process published the same (deterministic) chunk set first: keep it
            if not self.output().exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        self.report(f"{total} chunks · {_fmt(plan.total_rows)} rows · {len(copied)} copied during the export · "
                    f"{time.monotonic() - started:.1f} s", 100)


def copy_chunk(task: LoadTask, plan: source.Plan, index: int, chunk_set: Path, early: bool = False) -> None:
    """COPY chunk ``index`` of ``chunk_set`` into the load's staging table exactly once (the ledger
    decides) and mark it copied. ``early``: a copy made by the export, reported to the log only and
    left unmarked, so that the chunk's own task still runs (in a moment) and shows in the visualiser."""
    chunk = Chunk(task.load_id, index)
    rows = plan.chunk_rows(index)
    label = f"chunk {index + 1}/{len(plan.chunks)}"
    say = (lambda message, percent=None: log.info("%s: %s", task.table, message)) if early else task.report
    started = time.monotonic()

    def copy(conn) -> str:
        if not pg.ensure_staging(conn, plan, len(plan.chunks)):
            return "the load was already published by another process"
        if pg.chunk_in_ledger(conn, chunk):
            return "already in the ledger (copied during the export or by another process); not loading it again"
        say(f"{label} · copying {_fmt(rows)} rows", 0)
        try:
            pg.copy_chunk(conn, plan, chunk, chunk.files(chunk_set), rows)
        except ChunkAlreadyLoaded as exc:
            return f"{exc}; keeping that copy"
        return "copied"

    outcome = pg.with_retries(copy, f"loading {label} of {task.table}")
    faults.point("copy.after_commit")
    seconds = time.monotonic() - started
    if not early:
        with luigi.LocalTarget(task.load.copied_file(chunk.dirname)).open("w") as f:
            json.dump({"rows": rows, "seconds": round(seconds, 3), "outcome": outcome}, f)
    say(f"{label} · {_fmt(rows)} rows · {seconds:.1f} s · {outcome}", 100)
    faults.point("copy.done")


class CopyChunkToPostgres(LoadTask):
    """COPY one chunk into the load's staging table, recording it in the ledger in the same transaction."""

    chunk = _CHUNK

    def requires(self):
        return ExportCsvChunks(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.load.copied_file(Chunk(self.load_id, self.chunk).dirname))

    def run(self):
        copy_chunk(self, self.plan(), self.chunk, self.chunk_set)


class VerifyRowCount(LoadTask):
    """Load every chunk, then prove source rows = manifest rows = rows in PostgreSQL, and that every
    column's content statistics match those Spark observed in the source (see ``verify``)."""

    def requires(self):
        return ExportCsvChunks(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.load.verified_file)

    def run(self):
        manifest = read_manifest(self.chunk_set)
        chunks = [CopyChunkToPostgres(chunk=c["index"], **self.load_params) for c in manifest["chunks"]]
        done = sum(task.complete() for task in chunks)
        self.report(f"{done}/{len(chunks)} chunks loaded", 100 * done / max(1, len(chunks)))
        yield chunks
        plan = self.plan()
        self.report(f"{len(chunks)}/{len(chunks)} chunks loaded · verifying {_fmt(plan.total_rows)} rows", 0)

        def measure(conn) -> tuple[dict, int, int] | None:
            published = pg.published_info(conn, TableName.parse(self.table))
            if published and published[0] == self.load_id:
                return None
            return pg.load_stats(conn, plan, manifest.get("checksum", "md5"))

        started = time.monotonic()
        found = pg.with_retries(measure, f"verifying {self.table}")
        scan_seconds = round(time.monotonic() - started, 3)
        if found is None:
            self.report("the load was already verified and published by another process", 100)
            with self.output().open("w") as f:
                json.dump({"published_by_another_process": True}, f)
            return
        loaded, ledger_rows, ledger_chunks = found
        counts = (plan.total_rows, manifest["rows"], loaded["rows"])
        if len(set(counts)) != 1 or ledger_rows != loaded["rows"] or ledger_chunks != len(chunks):
            raise VerificationError(
                f"{self.table} (source {self.source!r}) does not verify: the source has {_fmt(counts[0])} rows, "
                f"the chunk manifest {_fmt(counts[1])}, PostgreSQL {_fmt(counts[2])} (ledger: {_fmt(ledger_rows)} "
                f"rows in {ledger_chunks} of {len(chunks)} chunks); nothing was published")
        source_stats = verify.combine([c["stats"] for c in manifest["chunks"]])
        problems = verify.differences(plan.columns, source_stats, loaded)
        if problems == [verify.CHECKSUM_ONLY]:
            self.report("the row checksum differs: reading the source again to find the column(s)", 100)
            from .arrow_export import column_checksums

            source_sums = column_checksums(plan)
            loaded_sums = pg.with_retries(lambda conn: pg.column_checksums(conn, plan), f"checking {self.table}")
            problems = [verify.changed_columns(plan.columns, source_sums, loaded_sums)]
        if problems:
            raise VerificationError(f"{self.table} (source {self.source!r}) does not verify: {'; '.join(problems)}; "
                                    "nothing was published")
        with self.output().open("w") as f:
            json.dump({"source_rows": counts[0], "manifest_rows": counts[1], "source": source_stats,
                       "loaded": loaded, "scan_seconds": scan_seconds}, f, indent=1)
        self.report(f"verified {_fmt(loaded['rows'])} rows in {len(chunks)} chunks: counts and checksums match", 100)
        faults.point("verify.done")


class PublishTable(LoadTask):
    """Swap the verified staging table in as the target table, atomically."""

    def requires(self):
        return VerifyRowCount(**self.load_params)

    def complete(self):
        conn = pg.connect()
        try:
            published = pg.published_info(conn, TableName.parse(self.table))
            if published is not None and published[0] == self.load_id:
                return True
            if pg.forget_vanished_load(conn, self.load_id):
                log.warning("%s was dropped after load %s published it; loading it again", self.table, self.load_id)
                shutil.rmtree(self.load_dir, ignore_errors=True)
            return False
        finally:
            conn.close()

    def run(self):
        plan = self.plan()
        pg.with_retries(lambda conn: pg.publish(conn, plan), f"publishing {self.table}")
        self.report(f"published {_fmt(plan.total_rows)} rows", 100)
        for other in self.load.table_dir.iterdir():
            if other != self.load_dir:
                shutil.rmtree(other, ignore_errors=True)
        shutil.rmtree(self.chunk_set, ignore_errors=True)


class IngestTable(luigi.WrapperTask):
    """Load one folder of Parquet files into one table (replace semantics)."""

    table = luigi.Parameter(description="Target table, schema.table")
    source = luigi.Parameter(default="", description="Folder of Parquet files; default: the table's "
                             "entry in config/")
    chunk_rows = luigi.IntParameter(default=0, description="Rows per CSV chunk; default: config/ or "
                                    "[pipeline] chunk_rows")

    @cached_property
    def _publish(self) -> PublishTable:
        return PublishTable(**catalog.current_load(self.table, self.source, self.chunk_rows)._asdict())

    def requires(self):
        return self._publish


class IngestAll(luigi.WrapperTask):
    """Load every table declared in config/."""

    def requires(self):
        return [IngestTable(table=s.table, source=s.source, chunk_rows=s.chunk_rows)
                for s in catalog.load_tables()]
