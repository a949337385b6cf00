"""The PostgreSQL side: connections, the ledger, staging tables, COPY and the atomic publish.

State lives in one schema (``[postgres] state_schema``, default ``pipeline``):

* ``loads``        one row per load: its target, source and expected rows;
* ``chunk_ledger`` one row per loaded chunk, written in the *same transaction* as the
                   chunk's COPY - a chunk is in the staging table exactly when its ledger
                   row is, and the primary key makes a second copy of it impossible;
* ``published``    which load each target table currently holds;
* ``load_<id>``    a load's staging table, renamed into place when the load is published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from . import faults, settings, verify
from .chunks import Chunk
from .errors import ChunkAlreadyLoaded, DatabaseError, TransientDatabaseError, VerificationError
from .naming import TableName
from .source import Plan
from .typemap import Column, csv_order

log = logging.getLogger(__name__)
T = TypeVar("T")
_TRANSIENT_CODES = ("08", "57P01", "57P02", "57P03", "53300")
_TERMINAL_CONNECT_ERRORS = ("authentication failed", "does not exist", "permission denied", "no pg_hba.conf entry",
                            "invalid", "unsupported")
_state_ready: set[str] = set()


def target_dsn() -> str:
    from . import localpg

    return settings.pg_dsn() or localpg.embedded_dsn()


def describe(dsn: str) -> str:
    """Where a DSN points, without its password: host:port/dbname as user."""
    try:
        p = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "an unparseable DSN"
    host = p.get("host") or "local socket"
    return f"{host}:{p.get('port') or 5432}/{p.get('dbname') or p.get('user') or '?'}"


def _translate(exc: psycopg2.Error, doing: str) -> DatabaseError:
    code = getattr(exc, "pgcode", None) or ""
    message = settings.redact((getattr(exc, "pgerror", None) or str(exc)).strip().split("\n")[0])
    message = message.removeprefix("ERROR:").strip()
    transient = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and (
        not code or code.startswith(_TRANSIENT_CODES)
    )
    return (TransientDatabaseError if transient else DatabaseError)(f"{doing} failed: {message}")


def connect() -> psycopg2.extensions.connection:
    """A connection to the target database with the state schema in place."""
    dsn = target_dsn()
    try:
        conn = psycopg2.connect(
            dsn, connect_timeout=settings.postgres().connect_timeout, application_name="parquet-pg-pipeline"
        )
    except psycopg2.Error as exc:
        reason = settings.redact(str(exc).strip().split("\n")[0])
        terminal = any(phrase in reason for phrase in _TERMINAL_CONNECT_ERRORS)
        kind = DatabaseError if terminal else TransientDatabaseError
        raise kind(f"cannot connect to PostgreSQL at {describe(dsn)}: {reason}") from exc
    if dsn not in _state_ready:
        _create_state_schema(conn)
        _state_ready.add(dsn)
    return conn


def with_retries(work: Callable[[psycopg2.extensions.connection], T], doing: str) -> T:
    """Run ``work`` on a fresh connection, again on a transient failure (connection lost, server
    restarting), at most ``[postgres] retries`` more times. ``work`` must be safe to repeat:
    every unit of it is one transaction."""
    cfg = settings.postgres()
    for attempt in range(cfg.retries + 1):
        try:
            conn = connect()
            try:
                return work(conn)
            finally:
                conn.close()
        except TransientDatabaseError as exc:
            if attempt == cfg.retries:
                raise
            delay = cfg.retry_delay_s * 2**attempt
            log.warning("%s: %s; retrying in %.0f s (%d/%d)", doing, exc, delay, attempt + 1, cfg.retries)
            time.sleep(delay)
    raise AssertionError("unreachable")


@contextmanager
def transaction(conn, doing: str) -> Iterator[psycopg2.extensions.cursor]:
    """Run the block in one transaction: commit at the end, roll back and translate on any error."""
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException as exc:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass  # the connection is gone; the server rolls the transaction back
        if isinstance(exc, psycopg2.Error):
            raise _translate(exc, doing) from exc
        raise


def _state(name: str) -> sql.Identifier:
    return sql.Identifier(settings.postgres().state_schema, name)


def _create_state_schema(conn) -> None:
    schema = sql.Identifier(settings.postgres().state_schema)
    with transaction(conn, "creating the pipeline's state tables") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('parquet-pg-pipeline state'))")
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (settings.postgres().state_schema,))
        if cur.fetchone() is None:  # a role without CREATE on the database may use a schema made for it
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
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
            """).format(loads=_state("loads"), ledger=_state("chunk_ledger"), published=_state("published")))


def staging_table(load_id: str) -> sql.Identifier:
    return _state(f"load_{load_id}")


def ensure_staging(conn, plan: Plan, chunks: int) -> bool:
    """Create the load's staging table and its ``loads`` row, once, whoever comes first.

    Returns False, creating nothing, when another process has already published this load."""
    target = TableName.parse(plan.table)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in plan.columns
    )
    with transaction(conn, f"creating the staging table of {plan.table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (plan.load_id,))
        cur.execute(sql.SQL("SELECT published_at IS NOT NULL FROM {} WHERE load_id = %s").format(_state("loads")),
                    (plan.load_id,))
        row = cur.fetchone()
        if row and row[0]:
            return False
        # No autovacuum while loading: it would scan the growing table beside the COPYs and the verification.
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) WITH (autovacuum_enabled = false)").format(
            staging_table(plan.load_id), columns))
        cur.execute(
            sql.SQL("""INSERT INTO {} (load_id, target_schema, target_table, source, expected_rows, chunks)
                       VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (load_id) DO NOTHING""").format(
                _state("loads")),
            (plan.load_id, target.schema, target.name, plan.source, plan.total_rows, chunks),
        )
    return True


def copy_statement(table: sql.Composable, columns: list[Column]) -> sql.Composed:
    """The one COPY statement: CSV from the client, columns named in the export's ``csv_order``."""
    names = sql.SQL(", ").join(sql.Identifier(columns[i].name) for i in csv_order(columns))
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(table, names)


def chunk_in_ledger(conn, chunk: Chunk) -> bool:
    with transaction(conn, f"reading the ledger for {chunk}") as cur:
        cur.execute(sql.SQL("SELECT 1 FROM {} WHERE load_id = %s AND chunk = %s").format(
            _state("chunk_ledger")), chunk)
        return cur.fetchone() is not None


def copy_chunk(conn, plan: Plan, chunk: Chunk, files: list[Path], expected_rows: int) -> None:
    """COPY the chunk's files into staging and record it in the ledger, in one transaction.

    The ledger row goes in first: a concurrent copier of the same chunk then waits on the
    primary key and fails with ``ChunkAlreadyLoaded`` as soon as this one commits.
    """
    statement = copy_statement(staging_table(plan.load_id), plan.columns)
    buffer = settings.postgres().copy_buffer_bytes
    with transaction(conn, f"loading {chunk} of {plan.table} (source {plan.describe_chunk(chunk.index)})") as cur:
        try:
            cur.execute(sql.SQL("INSERT INTO {} (load_id, chunk, rows) VALUES (%s, %s, %s)").format(
                _state("chunk_ledger")), (chunk.load_id, chunk.index, expected_rows))
        except psycopg2.errors.UniqueViolation as exc:
            raise ChunkAlreadyLoaded(f"{chunk} was already loaded by another process") from exc
        copied = 0
        for path in files:
            with open(path, "rb") as f:
                cur.copy_expert(statement, f, size=buffer)
            copied += cur.rowcount
        if copied != expected_rows:
            raise VerificationError(
                f"{chunk} of {plan.table}: its CSV files hold {copied} rows but its source files "
                f"{expected_rows}; the chunk was not loaded")
        faults.point("copy.before_commit")


def load_stats(conn, plan: Plan, checksum: str) -> tuple[dict, int, int]:
    """(content statistics of the staging table (see ``verify``; ``checksum`` names the row hash), rows in
    the ledger, chunks in the ledger)."""
    with transaction(conn, f"verifying the rows of {plan.table}") as cur:
        stats = verify.pg_stats(cur, staging_table(plan.load_id), plan.columns, checksum)
        cur.execute(sql.SQL("SELECT coalesce(sum(rows), 0), count(*) FROM {} WHERE load_id = %s").format(
            _state("chunk_ledger")), (plan.load_id,))
        ledger_rows, ledger_chunks = cur.fetchone()
    return stats, int(ledger_rows), ledger_chunks


def column_checksums(conn, plan: Plan) -> dict[int, int]:
    """Per-column checksums of the staging table (see ``verify.pg_column_checksums``)."""
    with transaction(conn, f"checking the columns of {plan.table}") as cur:
        return verify.pg_column_checksums(cur, staging_table(plan.load_id), plan.columns)


def ledger_progress(conn, load_id: str) -> tuple[int, int]:
    """(chunks, rows) the ledger records for a load."""
    with transaction(conn, f"reading the ledger of load {load_id}") as cur:
        cur.execute(sql.SQL("SELECT count(*), coalesce(sum(rows), 0) FROM {} WHERE load_id = %s").format(
            _state("chunk_ledger")), (load_id,))
        chunks, rows = cur.fetchone()
    return chunks, int(rows)


def _published_row(cur, table: TableName) -> tuple[str, int] | None:
    """The published load of ``table`` - as long as the table is still there (someone may have dropped it)."""
    cur.execute(sql.SQL("""SELECT load_id, rows FROM {} WHERE target_schema = %s AND target_table = %s
                           AND to_regclass(%s) IS NOT NULL""").format(_state("published")),
                (*table, table.identifier().as_string(cur)))
    row = cur.fetchone()
    return (row[0], row[1]) if row else None


def _published_load_id(cur, table: TableName) -> str | None:
    row = _published_row(cur, table)
    return row[0] if row else None


def published_info(conn, table: TableName) -> tuple[str, int] | None:
    """(load id, rows) of the load the target table holds, or None before its first load."""
    with transaction(conn, f"reading which load {table} holds") as cur:
        return _published_row(cur, table)


def forget_vanished_load(conn, load_id: str) -> bool:
    """If this load was published but its table has since been dropped, forget the load (its
    ledger rows and records) so that it runs again from the start; True when it did."""
    with transaction(conn, f"checking load {load_id}") as cur:
        cur.execute(sql.SQL("SELECT published_at IS NOT NULL FROM {} WHERE load_id = %s").format(_state("loads")),
                    (load_id,))
        row = cur.fetchone()
        if not (row and row[0]):
            return False
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(_state("chunk_ledger")), (load_id,))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(_state("published")), (load_id,))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(_state("loads")), (load_id,))
    return True


def check_can_publish(conn, table: TableName) -> None:
    """Fail early, before any export, when the connecting role could not publish the table."""
    with transaction(conn, f"checking rights on {table}") as cur:
        cur.execute("""
            SELECT current_user, has_database_privilege(current_database(), 'CREATE'),
                   (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = %s),
                   (SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass(%s))""",
                    (table.schema, table.identifier().as_string(conn)))
        user, can_create_schema, can_create_table, owns_table = cur.fetchone()
    if can_create_table is None and not can_create_schema:
        raise DatabaseError(f"role {user} may not create schema {table.schema!r} for {table}")
    if can_create_table is False:
        raise DatabaseError(f"role {user} may not create tables in schema {table.schema!r}, so it cannot publish "
                            f"{table}; grant CREATE on that schema or load into another one")
    if owns_table is False:
        raise DatabaseError(f"role {user} does not own {table}, so it cannot replace it")


def publish(conn, plan: Plan) -> None:
    """Swap the verified staging table in as the target, atomically, and drop stale loads."""
    target = TableName.parse(plan.table)
    stage_name = f"load_{plan.load_id}"
    with transaction(conn, f"publishing {plan.table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(target),))
        if _published_load_id(cur, target) == plan.load_id:
            log.info("%s: load %s was already published by another process", plan.table, plan.load_id)
            return
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target.schema)))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target.identifier()))
        cur.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
            staging_table(plan.load_id), sql.Identifier(target.schema)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(target.schema, stage_name), sql.Identifier(target.name)))
        cur.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(target.identifier()))
        cur.execute(sql.SQL("""
            INSERT INTO {} (target_schema, target_table, load_id, rows) VALUES (%s, %s, %s, %s)
            ON CONFLICT (target_schema, target_table)
            DO UPDATE SET load_id = excluded.load_id, rows = excluded.rows, published_at = now()
            """).format(_state("published")), (target.schema, target.name, plan.load_id, plan.total_rows))
        cur.execute(sql.SQL("UPDATE {} SET published_at = now() WHERE load_id = %s").format(_state("loads")),
                    (plan.load_id,))
        cur.execute(sql.SQL("""SELECT load_id FROM {} WHERE target_schema = %s AND target_table = %s
                               AND load_id <> %s""").format(_state("loads")),
                    (target.schema, target.name, plan.load_id))
        stale = [row[0] for row in cur.fetchall()]
        for load_id in stale:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging_table(load_id)))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(_state("loads")), (stale,))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(_state("chunk_ledger")), (stale,))
    faults.point("publish.after_commit")
    with transaction(conn, f"analyzing {plan.table}") as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(target.identifier()))
