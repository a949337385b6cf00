"""The Luigi task graph of a load.

    IngestAll -> IngestTable -> PublishTable -> VerifyRowCount -> CopyChunkToPostgres x N
                            |                               \\-> ExportCsvChunks -> SparkReadParquet
                            \\-> ForgetRemovedFiles (``ingest``: on_removed = "delete")

Every task of a load carries the same parameters (table, source, chunk_rows, the fingerprint of its
files, the mode, a merge's key, the table options that change its chunks), so its id names *what* is
loaded; where the state lives and how many workers run are settings, not parameters. Changing a source
file changes the fingerprint, hence every task id, hence makes a new load. In ``append`` and ``merge``
modes a load is an increment: the files not yet in the table (``scheduling``); with none, ``IngestTable``
requires nothing and nothing runs.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path

import luigi

from . import config, engines, faults, folders, logs, scheduling, steps
from .errors import StateReset, explain
from .model.chunk import Chunk, Manifest
from .model.load import MODES, Load
from .model.plan import Plan
from .postgres import append, client, publish, state
from .source.planning import make_plan

log = logging.getLogger(__name__)

# Parameter order is creation order; it is the order a task shows its parameters in logs and the visualiser.
TABLE = luigi.Parameter(description="Target table, schema.table")
_CHUNK = luigi.IntParameter(description="Index of the chunk in the load's chunk set")
_SOURCE = luigi.Parameter(description="Folder of Parquet files (absolute path)")
_CHUNK_ROWS = luigi.IntParameter(description="Rows per CSV chunk, about")
_FINGERPRINT = luigi.Parameter(description="Digest of the source files' names, sizes and mtimes")
MODE = luigi.ChoiceParameter(choices=MODES, default="replace", description="replace: the table becomes the "
                              "folder; append: the files not yet loaded are added to it; merge: merged into it")
_KEY = luigi.Parameter(default="", description="merge: the key's columns, comma-separated")
_OPTIONS = luigi.Parameter(default="", description="The table's options from config/ that change the chunks: "
                           "source_file_column, dedup (JSON)")


class SetsUpTheRun:
    """Creating a task of the pipeline sets up the run - its logging (``logs``) and a state dir private to the
    running user (``config.private_state_dir``); importing the package does neither."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logs.setup()
        config.private_state_dir()


class LoadTask(SetsUpTheRun, luigi.Task):
    """Shared by every task of one load."""

    table = TABLE
    source = _SOURCE
    chunk_rows = _CHUNK_ROWS
    fingerprint = _FINGERPRINT
    mode = MODE
    key = _KEY
    options = _OPTIONS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        folders.hold(self.load.folder)  # a process that has scheduled the load uses its folder

    @property
    def load_params(self) -> dict:
        return self.load._asdict()

    @cached_property
    def load(self) -> Load:
        return Load(self.table, self.source, self.chunk_rows, self.fingerprint, self.mode, self.key, self.options)

    @property
    def load_id(self) -> str:
        return self.load.load_id

    def plan(self) -> Plan:
        return Plan.from_json(self.load.plan_file.read_text())

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
        increment = scheduling.increment_files(self.load) if self.load.incremental else None
        plan = make_plan(self.load_id, self.table, self.source, self.fingerprint, self.chunk_rows,
                         increment.files if increment else None, mode=self.mode,
                         whole_table=increment.whole_table if increment else True, key=self.load.key_columns,
                         file_column=self.load.file_column, row_column=self.load.row_column,
                         rewritten=increment.rewritten if increment else {}, bad_rows=self.load.bad_row_budget,
                         dedup=self.load.dedup)

        def check(conn) -> None:
            state.ensure_schema(conn)
            publish.check_can_publish(conn, self.load.target, self.load.incremental)
            if self.load.incremental:
                append.check_columns(conn, self.load.target, plan.table_columns, self.source)

        client.with_retries(check, f"checking rights on {self.table}")
        self.load.folder.mkdir(parents=True, exist_ok=True)
        with self.output().open("w") as f:
            f.write(plan.to_json())
        self.report(f"{steps.fmt(len(plan.files))} files · {steps.fmt(plan.total_rows)} rows · "
                    f"{len(plan.columns)} columns · {len(plan.chunks)} chunks", 100)


class ExportCsvChunks(LoadTask):
    """Export every chunk as CSV; the chunk set and its manifest appear at once.

    With ``[export] copy_during_export`` (the default) a chunk is copied into PostgreSQL as soon
    as it is written, up to ``--workers`` at a time, while later chunks are still being exported;
    a chunk not copied here (a copy failed, the process died) is left to its ``CopyChunkToPostgres``."""

    def requires(self):
        return SparkReadParquet(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.load.manifest_file)

    def run(self):
        plan = Plan.from_json(Path(self.input().path).read_text())
        if client.with_retries(lambda conn: state.forget_vanished_load(conn, self.load_id, self.load.incremental),
                               f"checking load {self.load_id}"):
            log.warning("%s was dropped after load %s published it; loading it again", self.table, self.load_id)
            self.load.forget_progress()
        url = engines.engine(plan).tracking_url()
        if url and self.set_tracking_url:  # the visualiser links the task to Spark's UI
            self.set_tracking_url(url)
        steps.export(self.load, plan, self.report, copiers=luigi.interface.core().workers)


class CopyChunkToPostgres(LoadTask):
    """COPY one chunk into the load's staging table, recording it in the ledger in the same transaction."""

    chunk = _CHUNK

    def requires(self):
        return ExportCsvChunks(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.load.copied_file(Chunk(self.load_id, self.chunk).dirname))

    def run(self):
        steps.copy_chunk(self.load, self.plan(), self.chunk, Path(self.input().path).parent, self.report)


class VerifyRowCount(LoadTask):
    """Load every chunk, then prove source rows = manifest rows = rows in PostgreSQL, and that every
    column's content statistics match those observed in the source (see ``verification``)."""

    def requires(self):
        return ExportCsvChunks(**self.load_params)

    def output(self):
        return luigi.LocalTarget(self.load.verified_file)

    def complete(self):
        """Verified, and its chunk set still there: publishing removes it, so a load whose table was dropped
        after it was published is exported, copied and verified again (``ExportCsvChunks.run``)."""
        return self.output().exists() and self.load.manifest_file.exists()

    def run(self):
        plan = self.plan()
        manifest = Manifest.read(Path(self.input().path), plan.columns)
        chunks = [CopyChunkToPostgres(chunk=i, **self.load_params) for i in range(len(manifest.chunk_rows))]
        done = sum(task.complete() for task in chunks)
        self.report(f"{done}/{len(chunks)} chunks loaded", 100 * done / max(1, len(chunks)))
        yield chunks
        self.report(f"{len(chunks)}/{len(chunks)} chunks loaded · verifying {steps.fmt(plan.total_rows)} rows", 0)
        record = steps.verify(self.load, plan, manifest, self.report)
        with self.output().open("w") as f:
            json.dump(record or {"published_by_another_process": True}, f, indent=1)
        if record is None:
            self.report("the load was already verified and published by another process", 100)
            return
        self.report(f"verified {steps.fmt(plan.total_rows)} rows in {len(chunks)} chunks: counts and checksums "
                    "match", 100)
        faults.point("verify.done")


class PublishTable(LoadTask):
    """Swap the verified staging table in as the target table, atomically; or, for an increment, add it to the
    table (``postgres.append``)."""

    def requires(self):
        return VerifyRowCount(**self.load_params)

    def complete(self):
        with client.connection() as conn:
            if self.load.incremental:
                return state.increment_published(conn, self.load_id, self.load.target)
            published = state.published_info(conn, self.load.target)
        return published is not None and published[0] == self.load_id

    def run(self):
        if client.with_retries(lambda conn: state.forget_vanished_load(conn, self.load_id, self.load.incremental),
                               f"checking load {self.load_id}"):
            # published, then killed before its chunk set was removed, and the table dropped since
            folders.remove(self.load.folder, self.load.folder)
            raise StateReset(f"{self.table} was dropped after load {self.load_id} published it; the load's state "
                             "was reset - run again to load it")
        plan = self.plan()
        bad = steps.quarantine_refused(plan)
        declared = steps.declared_indexes(self.table)
        if self.load.incremental:
            self.report(steps.publish_increment(plan, declared), 100)
            steps.forget_increment(self.load)
            return
        made = client.with_retries(lambda conn: publish.publish(conn, plan, declared), f"publishing {self.table}")
        self.report(f"published {steps.fmt(plan.total_rows - bad)} rows"
                    + (f" ({bad:,} quarantined: python -m pipeline quarantine {self.table})" if bad else "")
                    + (f"; made the {', '.join(made)} config/ declares" if made else ""), 100)
        for other in self.load.table_dir.iterdir():
            if other != self.load.folder:
                folders.remove(other, other)
        folders.remove(self.load.chunk_set, self.load.folder)
