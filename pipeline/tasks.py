"""The Luigi task graph of a load.

    IngestAll -> IngestTable -> PublishTable -> VerifyRowCount -> CopyChunkToPostgres x N
                            |                               \\-> ExportCsvChunks -> SparkReadParquet
                            \\-> ForgetRemovedFiles (``ingest``: on_removed = "delete")

What each does: ``SparkReadParquet`` plans the load - it reads every file's Parquet footer (rows, schema)
and packs the files into chunks; ``ExportCsvChunks`` writes the chunks (CSV, or PostgreSQL's binary COPY
format) with the configured engine and starts copying each into PostgreSQL as soon as it is written;
``CopyChunkToPostgres`` copies one chunk (if the export did not) with its ledger row; ``VerifyRowCount``
proves the staging table holds the source's rows - counts, and every column's content by typed checksums and
statistics; ``PublishTable`` publishes it in the load's write mode (``postgres.modes``).

Every task of a load carries the same parameters (table, source, chunk_rows, the fingerprint of its
files, the load's options), so its id names *what* is loaded; where the state lives and how many workers
run are settings, not parameters. Changing a source file changes the fingerprint, hence every task id,
hence makes a new load. In ``append`` and ``merge`` modes a load is an increment: the files not yet in the
table (``scheduling``); with none, ``IngestTable`` requires nothing and nothing runs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import luigi

from . import budget, config, engines, faults, folders, logs, parameters, steps
from .errors import StateReset, explain
from .model.chunk import Chunk, Manifest
from .model.load import Load
from .model.plan import Plan
from .postgres import client, modes
from .postgres.schema import ensure_schema
from .postgres.state import LoadState, PublishedTarget
from .source.increment import Increment
from .source.planning import make_plan

log = logging.getLogger(__name__)

class SetsUpTheRun:
    """Creating a task of the pipeline sets up the run - its logging (``logs``) and a state dir private to the
    running user (``config.private_state_dir``); importing the package does neither."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logs.setup()
        config.private_state_dir()


class LoadTask(SetsUpTheRun, luigi.Task):
    """Shared by every task of one load."""

    table = parameters.TABLE
    source = parameters.SOURCE
    chunk_rows = parameters.CHUNK_ROWS
    fingerprint = parameters.FINGERPRINT
    options = parameters.OPTIONS
    declared = parameters.DECLARED

    @classmethod
    def of(cls, load: Load, **more) -> LoadTask:
        """The task of ``load``."""
        return cls(table=load.table, source=load.source, chunk_rows=load.chunk_rows, fingerprint=load.fingerprint,
                   options=load.options, declared=load.options, **more)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        folders.hold(self.load.folder)  # a process that has scheduled the load uses its folder

    @cached_property
    def load(self) -> Load:
        options = replace(self.options, primary_key=self.declared.primary_key, indexes=self.declared.indexes)
        return Load(self.table, self.source, self.chunk_rows, self.fingerprint, options)

    @property
    def load_id(self) -> str:
        return self.load.load_id

    def plan(self) -> Plan:
        """The load's plan, with the task's options: the same as the plan's but for the declared indexes, which
        config/ may have changed since it was planned (the newest declaration is made), or which a plan written by
        an earlier version does not hold."""
        return replace(Plan.from_json(self.load.plan_file.read_text()), options=self.load.options)

    def reset_if_vanished(self) -> bool:
        """Forget the load if it was published and its rows are gone since (``LoadState.reset_if_vanished``)."""
        return client.with_retries(LoadState.of(self.load).reset_if_vanished, f"checking load {self.load_id}")

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
    """Plan the load: read every file's Parquet footer (rows, schema, the level counts of nested columns), map the
    columns to PostgreSQL types and pack the files into chunks; check the load could be published."""

    def output(self):
        return luigi.LocalTarget(self.load.plan_file)

    def run(self):
        plan = make_plan(self.load, Increment.read(self.load.increment_file) if self.load.incremental else None)
        writer = modes.writer(plan.mode)

        def check(conn) -> None:
            ensure_schema(conn)
            writer.check(conn, plan)

        client.with_retries(check, f"checking rights on {self.table}")
        self.load.folder.mkdir(parents=True, exist_ok=True)
        with self.output().open("w") as f:
            f.write(plan.to_json())
        self.report(f"{len(plan.files):,} files · {plan.total_rows:,} rows · {len(plan.columns)} columns · "
                    f"{len(plan.chunks)} chunks", 100)


class ExportCsvChunks(LoadTask):
    """Export every chunk - CSV, or PostgreSQL's binary COPY format (``[export] chunk_format``) - with the
    configured engine; the chunk set and its manifest appear at once.

    With ``[export] copy_during_export`` (the default) a chunk is copied into PostgreSQL as soon
    as it is written, up to ``--workers`` at a time, while later chunks are still being exported;
    a chunk not copied here (a copy failed, the process died) is left to its ``CopyChunkToPostgres``."""

    def requires(self):
        return SparkReadParquet.of(self.load)

    def output(self):
        return luigi.LocalTarget(self.load.manifest_file)

    def run(self):
        plan = self.plan()
        if self.reset_if_vanished():
            log.warning("%s was dropped after load %s published it; loading it again", self.table, self.load_id)
            self.load.remove_marks()
        url = engines.engine(plan).tracking_url()
        if url and self.set_tracking_url:  # the visualiser links the task to Spark's UI
            self.set_tracking_url(url)
        steps.export(self.load, plan, self.report, copiers=luigi.interface.core().workers)


class CopyChunkToPostgres(LoadTask):
    """COPY one chunk into the load's staging table, recording it in the ledger in the same transaction."""

    chunk = parameters.CHUNK

    def requires(self):
        return ExportCsvChunks.of(self.load)

    def output(self):
        return luigi.LocalTarget(self.load.copied_file(Chunk(self.load_id, self.chunk).dirname))

    def run(self):
        steps.copy_chunk(self.load, self.plan(), self.chunk, Path(self.input().path).parent, self.report)


class VerifyRowCount(LoadTask):
    """Load every chunk, then prove source rows = manifest rows = rows in PostgreSQL, and that every
    column's content statistics match those observed in the source (see ``verification``)."""

    def requires(self):
        return ExportCsvChunks.of(self.load)

    def output(self):
        return luigi.LocalTarget(self.load.verified_file)

    def complete(self):
        """Verified, and its chunk set still there: publishing removes it, so a load whose table was dropped
        after it was published is exported, copied and verified again (``ExportCsvChunks.run``)."""
        return self.output().exists() and self.load.manifest_file.exists()

    def run(self):
        plan = self.plan()
        manifest = Manifest.read(Path(self.input().path), plan.columns)
        chunks = [CopyChunkToPostgres.of(self.load, chunk=i) for i in range(len(manifest.chunk_rows))]
        done = sum(task.complete() for task in chunks)
        self.report(f"{done}/{len(chunks)} chunks loaded", 100 * done / max(1, len(chunks)))
        yield chunks
        self.report(f"{len(chunks)}/{len(chunks)} chunks loaded · verifying {plan.total_rows:,} rows", 0)
        record = steps.verify(self.load, plan, manifest, self.report)
        with self.output().open("w") as f:
            json.dump(record or {"published_by_another_process": True}, f, indent=1)
        if record is None:
            self.report("the load was already verified and published by another process", 100)
            return
        self.report(f"verified {plan.total_rows:,} rows in {len(chunks)} chunks: counts and checksums "
                    "match", 100)
        faults.point("verify.done")


class PublishTable(LoadTask):
    """Publish the verified load in its write mode (``postgres.modes``): swap the staging table in as the target
    table, atomically (``replace``), or add its rows to the table (``append``, ``merge``) - complete when the state
    schema says the target holds the load."""

    def requires(self):
        return VerifyRowCount.of(self.load)

    def output(self):
        return PublishedTarget(self.load)

    def run(self):
        if self.reset_if_vanished():  # published, then killed before its chunk set was removed, and the table dropped
            folders.remove(self.load.folder, self.load.folder)
            raise StateReset(f"{self.table} was dropped after load {self.load_id} published it; the load's state "
                             "was reset - run again to load it")
        plan = self.plan()
        budget.check_constraints(plan, modes.writer(plan.mode).rebuilds_table)
        self.report(steps.sentence(plan, steps.publish(plan)), 100)
        steps.remove_published(self.load)
