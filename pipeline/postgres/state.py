"""The pipeline's state in the target database, one schema (``[postgres] state_schema``, default
``pipeline``):

* ``loads``        one row per load: its target, source and expected rows;
* ``chunk_ledger`` one row per loaded chunk, written in the *same transaction* as the
                   chunk's COPY - a chunk is in the staging table exactly when its ledger
                   row is, and the primary key makes a second copy of it impossible;
* ``published``    which load each target table currently holds;
* ``load_<id>``    a load's staging table (``model.load.staging_name``), renamed into place when the
                   load is published.

Writers call ``ensure_schema`` first; readers find no state before the first load and say so.
"""

from __future__ import annotations

from psycopg2 import sql

from .. import config
from ..model.chunk import Chunk
from ..model.load import staging_name
from ..model.naming import TableName
from .client import transaction


def state(name: str) -> sql.Identifier:
    return sql.Identifier(config.postgres().state_schema, name)


def staging_table(load_id: str) -> sql.Identifier:
    return state(staging_name(load_id))


def ensure_schema(conn) -> None:
    """Create the state schema and its tables where they are missing (idempotent, safe concurrently)."""
    schema = config.postgres().state_schema
    with transaction(conn, "creating the pipeline's state tables") as cur:
        if _exists(cur):
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
            """).format(loads=state("loads"), ledger=state("chunk_ledger"), published=state("published")))


def _exists(cur) -> bool:
    """Whether the state tables exist (a reader before the first load finds none)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (state("published").as_string(cur),))
    return cur.fetchone()[0]


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


def forget_vanished_load(conn, load_id: str) -> bool:
    """If this load was published but its table has since been dropped, forget the load (its
    ledger rows and records) so that it runs again from the start; True when it did."""
    with transaction(conn, f"checking load {load_id}") as cur:
        if not _exists(cur):
            return False
        cur.execute(sql.SQL("""SELECT 1 FROM {} l WHERE load_id = %s AND published_at IS NOT NULL AND NOT EXISTS
                                 (SELECT 1 FROM {} p WHERE p.load_id = l.load_id
                                  AND to_regclass(format('%%I.%%I', p.target_schema, p.target_table)) IS NOT NULL)
                            """).format(state("loads"), state("published")), (load_id,))
        if cur.fetchone() is None:
            return False
        for name in ("chunk_ledger", "published", "loads"):
            cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(state(name)), (load_id,))
    return True
