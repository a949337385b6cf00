"""The pipeline's state in the target database, one schema (``[postgres] state_schema``, default
``pipeline``):

* ``loads``        one row per load: its target, source and expected rows;
* ``chunk_ledger`` one row per loaded chunk, written in the *same transaction* as the
                   chunk's COPY - a chunk is in the staging table exactly when its ledger
                   row is, and the primary key makes a second copy of it impossible;
* ``published``    which load each target table currently holds;
* ``published_files`` per target table, every source file its rows came from (name, size, mtime, footer
                   digest), written in the publish's transaction: what an ``append`` load leaves out;
* ``quarantine``   the bad rows of loads with a bad-row budget, with their source coordinates
                   (``postgres.quarantine``);
* ``load_<id>``    a load's staging table (``model.load.staging_name``), renamed into place when the
                   load is published.

Writers call ``ensure_schema`` first; readers find no state before the first load and say so.
"""

from __future__ import annotations

from typing import NamedTuple

from psycopg2 import sql

from .. import config
from ..model.chunk import Chunk
from ..model.load import staging_name
from ..model.naming import TableName
from .client import transaction

# The bad rows of loads with a bad-row budget (``postgres.quarantine``).
_QUARANTINE = """
    CREATE TABLE IF NOT EXISTS {quarantine} (
        load_id text NOT NULL,
        target_schema text NOT NULL,
        target_table text NOT NULL,
        source text NOT NULL,
        source_file text NOT NULL,
        row_index bigint NOT NULL,
        row_group integer,
        columns text[] NOT NULL,
        reason text NOT NULL,
        row_values jsonb NOT NULL,
        found_by text NOT NULL,
        file_size bigint,
        file_mtime_ns bigint,
        quarantined_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (load_id, source_file, row_index));
    CREATE INDEX IF NOT EXISTS quarantine_target ON {quarantine} (target_schema, target_table);
"""


def state(name: str) -> sql.Identifier:
    return sql.Identifier(config.postgres().state_schema, name)


def staging_table(load_id: str) -> sql.Identifier:
    return state(staging_name(load_id))


def ensure_schema(conn) -> None:
    """Create the state schema and its tables where they are missing (idempotent, safe concurrently)."""
    schema = config.postgres().state_schema
    with transaction(conn, "creating the pipeline's state tables") as cur:
        if _exists(cur, "quarantine"):  # the newest of the tables: older states get what they lack
            return
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('parquet-pg-pipeline state'))")
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if cur.fetchone() is None:  # a role without CREATE on the database may use a schema made for it
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("""
            CREATE TABLE IF NOT EXISTS {loads} (
                load_id text PRIMARY KEY,
                target_schema text NOT NULL,
                target_table text NOT NULL,
                source text NOT NULL,
                expected_rows bigint NOT NULL,
                chunks integer NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                published_at timestamptz);
            CREATE TABLE IF NOT EXISTS {ledger} (
                load_id text NOT NULL,
                chunk integer NOT NULL,
                rows bigint NOT NULL,
                loaded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (load_id, chunk));
            CREATE TABLE IF NOT EXISTS {published} (
                target_schema text NOT NULL,
                target_table text NOT NULL,
                load_id text NOT NULL,
                rows bigint NOT NULL,
                published_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (target_schema, target_table));
            CREATE TABLE IF NOT EXISTS {files} (
                target_schema text NOT NULL,
                target_table text NOT NULL,
                name text NOT NULL,
                size bigint NOT NULL,
                mtime_ns bigint NOT NULL,
                digest text NOT NULL,
                rows bigint NOT NULL,
                load_id text NOT NULL,
                published_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (target_schema, target_table, name));
            """).format(loads=state("loads"), ledger=state("chunk_ledger"), published=state("published"),
                        files=state("published_files")))
        cur.execute(sql.SQL(_QUARANTINE).format(quarantine=state("quarantine")))


def _exists(cur, table: str = "published") -> bool:
    """Whether the state table exists (a reader before the first load finds none)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (state(table).as_string(cur),))
    return cur.fetchone()[0]


class Recorded(NamedTuple):
    """A source file as the record of published files holds it."""

    size: int
    mtime_ns: int
    digest: str
    load_id: str


def recorded_files(conn, table: TableName) -> tuple[bool, dict[str, Recorded]]:
    """(whether ``table`` holds a published load, the source files recorded for it by name)."""
    with transaction(conn, f"reading the files published into {table}") as cur:
        if not _exists(cur, "published_files"):
            return (_exists(cur) and published_row(cur, table) is not None), {}
        held = published_row(cur, table) is not None
        cur.execute(sql.SQL("""SELECT name, size, mtime_ns, digest, load_id FROM {}
                               WHERE target_schema = %s AND target_table = %s""").format(state("published_files")),
                    tuple(table))
        return held, {name: Recorded(*rest) for name, *rest in cur.fetchall()}


def record_files(cur, table: TableName, plan, replace: bool) -> None:
    """Record the plan's files as published into ``table`` (``replace``: instead of those recorded)."""
    if replace:
        cur.execute(sql.SQL("DELETE FROM {} WHERE target_schema = %s AND target_table = %s").format(
            state("published_files")), tuple(table))
    # a file's rows: those loaded, its footer's less those quarantined
    cur.execute(sql.SQL("""
        INSERT INTO {} (target_schema, target_table, name, size, mtime_ns, digest, rows, load_id)
        SELECT %s, %s, f.name, f.size, f.mtime_ns, f.digest, f.rows - coalesce(q.bad, 0), %s
          FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[])
            AS f(name, size, mtime_ns, digest, rows)
          LEFT JOIN (SELECT source_file, count(*) AS bad FROM {} WHERE load_id = %s GROUP BY 1) q
            ON q.source_file = f.name""").format(state("published_files"), state("quarantine")),
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
        """).format(state("published")), (*table, plan.load_id, rows))
    cur.execute(sql.SQL("UPDATE {} SET published_at = now() WHERE load_id = %s").format(state("loads")),
                (plan.load_id,))


def chunk_in_ledger(conn, chunk: Chunk) -> bool:
    with transaction(conn, f"reading the ledger for {chunk}") as cur:
        cur.execute(sql.SQL("SELECT 1 FROM {} WHERE load_id = %s AND chunk = %s").format(
            state("chunk_ledger")), chunk)
        return cur.fetchone() is not None


def ledger_progress(conn, load_id: str) -> tuple[int, int]:
    """(chunks, rows) the ledger records for a load."""
    with transaction(conn, f"reading the ledger of load {load_id}") as cur:
        if not _exists(cur):
            return 0, 0
        cur.execute(sql.SQL("SELECT count(*), coalesce(sum(rows), 0) FROM {} WHERE load_id = %s").format(
            state("chunk_ledger")), (load_id,))
        chunks, rows = cur.fetchone()
    return chunks, int(rows)


def published_row(cur, table: TableName) -> tuple[str, int] | None:
    """The published load of ``table`` - as long as the table is still there (someone may have dropped it)."""
    cur.execute(sql.SQL("""SELECT load_id, rows FROM {} WHERE target_schema = %s AND target_table = %s
                           AND to_regclass(%s) IS NOT NULL""").format(state("published")),
                (*table, table.identifier().as_string(cur)))
    row = cur.fetchone()
    return (row[0], row[1]) if row else None


def published_info(conn, table: TableName) -> tuple[str, int] | None:
    """(load id, rows) of the load the target table holds, or None before its first load."""
    with transaction(conn, f"reading which load {table} holds") as cur:
        return published_row(cur, table) if _exists(cur) else None


def last_publish(conn, table: TableName):
    """(rows, time) of the table's last publish, or None before its first."""
    with transaction(conn, f"reading when {table} was published") as cur:
        if not _exists(cur):
            return None
        cur.execute(sql.SQL("""SELECT rows, published_at FROM {} WHERE target_schema = %s AND target_table = %s
                               AND to_regclass(%s) IS NOT NULL""").format(state("published")),
                    (*table, table.identifier().as_string(cur)))
        return cur.fetchone()


def increment_published(conn, load_id: str, table: TableName) -> bool:
    """Whether the increment ``load_id`` is in ``table``: the table is there and its files are recorded."""
    with transaction(conn, f"reading whether load {load_id} is in {table}") as cur:
        if not _exists(cur, "published_files"):
            return False
        cur.execute(sql.SQL("""SELECT 1 FROM {} WHERE load_id = %s AND target_schema = %s AND target_table = %s
                               AND to_regclass(%s) IS NOT NULL LIMIT 1""").format(state("published_files")),
                    (load_id, *table, table.identifier().as_string(cur)))
        return cur.fetchone() is not None


def forget_vanished_load(conn, load_id: str, incremental: bool = False) -> bool:
    """If this load was published but its rows are no longer there - the table it swapped in was dropped or
    replaced; for an increment (``incremental``), the table was dropped or its files are no longer recorded -
    forget the load (its ledger rows and records) so that it runs again from the start; True when it did."""
    ensure_schema(conn)
    held = sql.SQL("""EXISTS (SELECT 1 FROM {} p WHERE p.load_id = l.load_id
                              AND to_regclass(format('%%I.%%I', p.target_schema, p.target_table)) IS NOT NULL)
                   """).format(state("published"))
    if incremental:
        held = sql.SQL("""(to_regclass(format('%%I.%%I', l.target_schema, l.target_table)) IS NOT NULL
                           AND EXISTS (SELECT 1 FROM {} f WHERE f.load_id = l.load_id))""").format(
            state("published_files"))
    with transaction(conn, f"checking load {load_id}") as cur:
        cur.execute(sql.SQL("SELECT 1 FROM {} l WHERE load_id = %s AND published_at IS NOT NULL AND NOT {}").format(
            state("loads"), held), (load_id,))
        if cur.fetchone() is None:
            return False
        for name in ("chunk_ledger", "published", "loads"):
            cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(state(name)), (load_id,))
    return True


def drop_load(conn, load_id: str) -> None:
    """Drop a load's staging table and forget its ledger and ``loads`` rows (an increment superseded by another,
    or one published whose folder a kill left behind); the files it recorded stay recorded."""
    with transaction(conn, f"removing load {load_id}") as cur:
        discard_load(cur, load_id)


def discard_load(cur, load_id: str) -> None:
    """``drop_load`` inside the caller's transaction, with the rows the load quarantined from files it did not
    publish."""
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging_table(load_id)))
    for name in ("chunk_ledger", "loads"):
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(state(name)), (load_id,))
    if _exists(cur, "quarantine"):  # the rows it quarantined, but those of the files it published
        cur.execute(sql.SQL("""DELETE FROM {} q WHERE load_id = %s AND NOT EXISTS (
                                   SELECT 1 FROM {} f WHERE f.load_id = q.load_id AND f.name = q.source_file)
                            """).format(state("quarantine"), state("published_files")), (load_id,))
