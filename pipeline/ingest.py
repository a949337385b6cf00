"""The tasks that bring tables up to date: ``IngestAll`` (every table of config/), ``IngestTable`` (one: the load
``scheduling`` finds, ``tasks.PublishTable`` at the end of its graph) and ``ForgetRemovedFiles``."""

from __future__ import annotations

import logging
from functools import cached_property

import luigi

from . import scheduling
from .model.naming import TableName
from .parameters import TABLE
from .postgres import append, client, state
from .source import catalog
from .tasks import PublishTable, SetsUpTheRun

log = logging.getLogger(__name__)


class ForgetRemovedFiles(SetsUpTheRun, luigi.Task):
    """Delete the rows of files removed from the source folder, and their records (``on_removed = "delete"``)."""

    table = TABLE
    files = luigi.ListParameter(description="Names of the removed files")
    file_column = luigi.Parameter(description="The column holding each row's file name")

    def complete(self):
        with client.connection() as conn:
            _, recorded = state.recorded_files(conn, TableName.parse(self.table))
        return not recorded.keys() & set(self.files)

    def run(self):
        done = client.with_retries(lambda conn: append.delete_removed(conn, self.table, self.file_column,
                                                                      list(self.files)),
                                   f"deleting the rows of removed files from {self.table}")
        said = (f"{self.table} is not there: no rows of removed files to delete" if not done.table_there else
                "another process deleted the rows of the removed files already" if not done.files else
                f"deleted the {done.rows:,} rows of {len(done.files):,} removed files ({done.files[0]!r} ...)")
        log.info("%s: %s", self.table, said)
        if self.set_status_message:
            self.set_status_message(said)


class IngestTable(SetsUpTheRun, luigi.WrapperTask):
    """Load one folder of Parquet files into one table: replace it, or append or merge the files not yet in it."""

    table = luigi.Parameter(description="Target table, schema.table")
    source = luigi.Parameter(default="", description="Folder of Parquet files; default: the table's "
                             "entry in config/")
    chunk_rows = luigi.IntParameter(default=0, description="Rows per CSV chunk; default: config/ or "
                                    "[pipeline] chunk_rows")
    mode = luigi.Parameter(default="", description="replace (the table becomes the folder), append (add the "
                           "files not yet loaded) or merge (merge them on --key); default: config/ (without "
                           "--source) or replace")
    key = luigi.Parameter(default="", description="merge: the columns that identify a row, comma-separated; "
                          "default: config/")
    max_bad_rows = luigi.OptionalIntParameter(default=None, description="Rows PostgreSQL cannot hold that may go to "
                                              "the quarantine table instead; default: config/, else 0 (refused)")
    max_bad_fraction = luigi.OptionalFloatParameter(default=None, description="The same budget as a fraction of "
                                                    "the load's rows (the greater of the two counts)")

    @cached_property
    def _tasks(self) -> list[luigi.Task]:
        load, removed, spec = scheduling.schedule(catalog.resolve(
            self.table, self.source, self.chunk_rows, self.mode, self.key, (self.max_bad_rows, self.max_bad_fraction)))
        tasks = [] if load is None else [PublishTable.of(load)]
        if removed:
            tasks.append(ForgetRemovedFiles(table=spec.table, files=removed,
                                            file_column=spec.options.source_file_column))
        return tasks

    def requires(self):
        return self._tasks


class IngestAll(SetsUpTheRun, luigi.WrapperTask):
    """Load every table declared in config/."""

    def requires(self):
        return [IngestTable(table=s.table, source=s.source, chunk_rows=s.chunk_rows, mode=s.options.mode,
                            key=",".join(s.options.key)) for s in catalog.load_tables()]
