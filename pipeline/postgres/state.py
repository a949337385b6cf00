"""Where loads and tables stand, read from the state schema (``schema``): the one place that answers whether a
load is published, a chunk copied, a published load vanished since, which load and which files a table holds -
and that writes a publish's marks in the publish's transaction. ``PublishedTarget`` backs a task's completion
with it, as the marker table of Luigi's ``PostgresTarget`` does.

Readers find no state before the first load, and take that for "nothing yet".
"""

from __future__ import annotations

from typing import NamedTuple

import luigi
from psycopg2 import sql

from ..model.load import Load
from ..model.naming import TableName
from . import schema
from .client import connection, exists, transaction
from .schema import ensure_schema


class Recorded(NamedTuple):
    """A source file as the record of published files holds it."""

    size: int
    mtime_ns: int
    digest: str
    load_id: str


def _published_row(cur, table: TableName) -> tuple | None:
    """(load id, rows, published at) of the load ``table`` holds - as long as the table is still there (someone may
    have dropped it) - or None."""
    if not exists(cur, schema.table("published")) or not exists(cur, table.identifier()):
        return None
    cur.execute(sql.SQL("""SELECT load_id, rows, published_at FROM {}
                           WHERE target_schema = %s AND target_table = %s""").format(schema.table("published")),
                tuple(table))
    return cur.fetchone()


def held(cur, table: TableName) -> tuple[str, int] | None:
    """(load id, rows) of the load ``table`` holds (while the table is there), or None."""
    row = _published_row(cur, table)
    return (row[0], row[1]) if row else None


def published_load(conn, table: TableName) -> tuple[str, int] | None:
    """``held`` in a transaction of its own."""
    with transaction(conn, f"reading which load {table} holds") as cur:
        return held(cur, table)


def last_publish(conn, table: TableName):
    """(rows, time) of the table's last publish, or None before its first."""
    with transaction(conn, f"reading when {table} was published") as cur:
        row = _published_row(cur, table)
    return row[1:] if row else None


def recorded_files(conn, table: TableName) -> tuple[bool, dict[str, Recorded]]:
    """(whether ``table`` holds a published load, the source files recorded for it by name)."""
    with transaction(conn, f"reading the files published into {table}") as cur:
        holds = held(cur, table) is not None
        if not exists(cur, schema.table("published_files")):
            return holds, {}
        cur.execute(sql.SQL("""SELECT name, size, mtime_ns, digest, load_id FROM {}
                               WHERE target_schema = %s AND target_table = %s""").format(
            schema.table("published_files")), tuple(table))
        return holds, {name: Recorded(*rest) for name, *rest in cur.fetchall()}


def record_files(cur, table: TableName, plan, replace: bool) -> None:
    """Record the plan's files as published into ``table`` (``replace``: instead of those recorded)."""
    files = schema.table("published_files")
    if replace:
        cur.execute(sql.SQL("DELETE FROM {} WHERE target_schema = %s AND target_table = %s").format(files),
                    tuple(table))
    # a file's rows: those loaded, its footer's less those quarantined
    cur.execute(sql.SQL("""
        INSERT INTO {} (target_schema, target_table, name, size, mtime_ns, digest, rows, load_id)
        SELECT %s, %s, f.name, f.size, f.mtime_ns, f.digest, f.rows - coalesce(q.bad, 0), %s
          FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[])
            AS f(name, size, mtime_ns, digest, rows)
          LEFT JOIN (SELECT source_file, count(*) AS bad FROM {} WHERE load_id = %s GROUP BY 1) q
            ON q.source_file = f.name""").format(files, schema.table("quarantine")),
                (*table, plan.load_id, [f.name for f in plan.files], [f.size for f in plan.files],
                 [f.mtime_ns for f in plan.files], [f.digest for f in plan.files], plan.file_rows, plan.load_id))


def mark_published(cur, table: TableName, plan, rows: int, replace_files: bool) -> None:
    """Inside the publish's transaction: record the plan's files (``record_files``), make its load the one
    ``table`` holds, with ``rows`` rows, and mark the load published."""
    record_files(cur, table, plan, replace=replace_files)
    cur.execute(sql.SQL("""
        INSERT INTO {} (target_schema, target_table, load_id, rows) VALUES (%s, %s, %s, %s)
        ON CONFLICT (target_schema, target_table)
        DO UPDATE SET load_id = excluded.load_id, rows = excluded.rows, published_at = now()
        """).format(schema.table("published")), (*table, plan.load_id, rows))
    cur.execute(sql.SQL("UPDATE {} SET published_at = now() WHERE load_id = %s").format(schema.table("loads")),
                (plan.load_id,))


def forget_load(cur, load_id: str) -> None:
    """Inside the caller's transaction: drop a load's staging table and forget its ledger and ``loads`` rows, and
    the rows it quarantined from files it did not publish (an increment superseded by another, a replaced load, one
    published whose folder a kill left behind); the files it recorded stay recorded."""
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(schema.staging(load_id)))
    for name in ("chunk_ledger", "loads"):
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(schema.table(name)), (load_id,))
    if exists(cur, schema.table("quarantine")):  # the rows it quarantined, but those of the files it published
        cur.execute(sql.SQL("""DELETE FROM {} q WHERE load_id = %s AND NOT EXISTS (
                                   SELECT 1 FROM {} f WHERE f.load_id = q.load_id AND f.name = q.source_file)
                            """).format(schema.table("quarantine"), schema.table("published_files")), (load_id,))


class LoadState(NamedTuple):
    """Where one load stands in the database."""

    load_id: str
    target: TableName
    incremental: bool

    @classmethod
    def of(cls, load: Load) -> LoadState:
        return cls(load.load_id, load.target, load.incremental)

    def is_published(self, cur) -> bool:
        """Whether the target holds the load: the load it holds (``replace``), or one holding the increment's
        files (``append``, ``merge``) - the target still there."""
        if not self.incremental:
            return (held(cur, self.target) or ("",))[0] == self.load_id
        if not exists(cur, schema.table("published_files")) or not exists(cur, self.target.identifier()):
            return False
        cur.execute(sql.SQL("""SELECT 1 FROM {} WHERE load_id = %s AND target_schema = %s AND target_table = %s
                               LIMIT 1""").format(schema.table("published_files")), (self.load_id, *self.target))
        return cur.fetchone() is not None

    def published(self, conn) -> bool:
        """``is_published`` in a transaction of its own."""
        with transaction(conn, f"reading whether load {self.load_id} is in {self.target}") as cur:
            return self.is_published(cur)

    def copied(self, conn, chunk: int) -> bool:
        """Whether the ledger holds chunk ``chunk`` of the load (so its rows are in the staging table)."""
        with transaction(conn, f"reading the ledger for chunk {chunk} of load {self.load_id}") as cur:
            cur.execute(sql.SQL("SELECT 1 FROM {} WHERE load_id = %s AND chunk = %s").format(
                schema.table("chunk_ledger")), (self.load_id, chunk))
            return cur.fetchone() is not None

    def progress(self, conn) -> tuple[int, int]:
        """(chunks, rows) the ledger records for the load."""
        with transaction(conn, f"reading the ledger of load {self.load_id}") as cur:
            if not exists(cur, schema.table("chunk_ledger")):
                return 0, 0
            cur.execute(sql.SQL("SELECT count(*), coalesce(sum(rows), 0) FROM {} WHERE load_id = %s").format(
                schema.table("chunk_ledger")), (self.load_id,))
            chunks, rows = cur.fetchone()
        return chunks, int(rows)

    def reset_if_vanished(self, conn) -> bool:
        """If the load was published but its rows are no longer there - the table it swapped in was dropped or
        replaced; for an increment, the table was dropped or its files are no longer recorded - forget the load
        (its ledger rows and records) so that it runs again from the start; True when it did."""
        ensure_schema(conn)
        with transaction(conn, f"checking load {self.load_id}") as cur:
            cur.execute(sql.SQL("SELECT published_at IS NOT NULL FROM {} WHERE load_id = %s").format(
                schema.table("loads")), (self.load_id,))
            row = cur.fetchone()
            if not row or not row[0] or self._still_there(cur):
                return False
            for name in ("chunk_ledger", "published", "loads"):
                cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(schema.table(name)), (self.load_id,))
        return True

    def _still_there(self, cur) -> bool:
        """Whether a published load's rows are where it put them: a table that holds it (a replace load holds the
        table it swapped in, whichever table that was), or the increment's files recorded in an existing table."""
        if self.incremental:
            return self.is_published(cur)
        cur.execute(sql.SQL("SELECT target_schema, target_table FROM {} WHERE load_id = %s").format(
            schema.table("published")), (self.load_id,))
        return any(exists(cur, TableName(*row).identifier()) for row in cur.fetchall())


class PublishedTarget(luigi.Target):
    """A load's completion as the state schema records it: its rows are in the target table."""

    def __init__(self, load: Load):
        self.state = LoadState.of(load)

    def exists(self) -> bool:
        with connection() as conn:
            return self.state.published(conn)
