"""A load's staging table: created once, filled chunk by chunk with COPY (each chunk with its ledger row,
in one transaction), and measured for verification."""

from __future__ import annotations

from pathlib import Path

import psycopg2.errors
from psycopg2 import sql

from .. import badrows, config, faults
from ..errors import ChunkAlreadyLoaded, VerificationError
from ..model.chunk import Chunk, is_binary
from ..model.load import staging_name
from ..model.naming import TableName
from ..model.plan import Plan
from ..types.mapping import Column, csv_order
from ..verification import scan
from ..verification.rowhash import Checksum
from ..verification.stats import Stats
from . import quarantine, rejected, schema
from .client import lock, transaction, with_retries
from .schema import ensure_schema
from .state import LoadState


def ensure_staging(conn, plan: Plan, chunks: int) -> bool:
    """Create the load's staging table and its ``loads`` row, once, whoever comes first.

    Returns False, creating nothing, when another process has already published this load."""
    ensure_schema(conn)
    target = TableName.parse(plan.table)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in plan.columns
    )
    with transaction(conn, f"creating the staging table of {plan.table}") as cur:
        lock(cur, plan.load_id)
        cur.execute(sql.SQL("SELECT published_at IS NOT NULL FROM {} WHERE load_id = %s").format(schema.table("loads")),
                    (plan.load_id,))
        row = cur.fetchone()
        if row and row[0]:
            return False
        # No autovacuum while loading: it would scan the growing table beside the COPYs and the verification.
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) WITH (autovacuum_enabled = false)").format(
            schema.staging(plan.load_id), columns))
        cur.execute(
            sql.SQL("""INSERT INTO {} (load_id, target_schema, target_table, source, expected_rows, chunks)
                       VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (load_id) DO NOTHING""").format(
                schema.table("loads")),
            (plan.load_id, target.schema, target.name, plan.source, plan.total_rows, chunks),
        )
    return True


def drop_hidden_columns(cur, plan: Plan, rewrite: bool) -> None:
    """Drop the columns only the load needed (``Plan.table_columns``) from its staging table. ``rewrite``: the
    staging table becomes the table, so it is written anew without them - a dropped column keeps its bytes in
    every row until the table is rewritten."""
    hidden = [c for c in plan.columns if c not in plan.table_columns]
    staged = schema.staging(plan.load_id)
    if not hidden:
        return
    if not rewrite:
        cur.execute(sql.SQL("ALTER TABLE {} ").format(staged) + sql.SQL(", ").join(
            sql.SQL("DROP COLUMN {}").format(sql.Identifier(c.name)) for c in hidden))
        return
    rewritten = schema.staging(plan.load_id, rewritten=True)
    cur.execute(sql.SQL("CREATE TABLE {} WITH (autovacuum_enabled = false) AS SELECT {} FROM {}").format(
        rewritten, sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.table_columns), staged))
    cur.execute(sql.SQL("DROP TABLE {}").format(staged))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(rewritten, sql.Identifier(staging_name(plan.load_id))))


def copy_statement(table: sql.Composable, columns: list[Column], part: Path) -> sql.Composed:
    """The COPY statement of a chunk part file: CSV, or PostgreSQL's binary format for a ``.bin`` file
    (``[export] chunk_format``), from the client, columns named in the export's ``csv_order``."""
    names = sql.SQL(", ").join(sql.Identifier(columns[i].name) for i in csv_order(columns))
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {})").format(
        table, names, sql.SQL("binary" if is_binary(part) else "csv"))


def _copy(conn, plan: Plan, chunk: Chunk, files: list[Path], expected_rows: int, bad: list[dict] = ()) -> None:
    """COPY the chunk's files into staging and record it in the ledger, in one transaction; with the rows its
    export set aside (``bad``, ``badrows``) put in the quarantine in the same transaction.

    The ledger row goes in first: a concurrent copier of the same chunk then waits on the
    primary key and fails with ``ChunkAlreadyLoaded`` as soon as this one commits.
    """
    buffer = config.postgres().copy_buffer_bytes
    with transaction(conn, f"loading {chunk} of {plan.table} (source {plan.describe_chunk(chunk.index)})") as cur:
        try:
            cur.execute(sql.SQL("INSERT INTO {} (load_id, chunk, rows) VALUES (%s, %s, %s)").format(
                schema.table("chunk_ledger")), (chunk.load_id, chunk.index, expected_rows))
        except psycopg2.errors.UniqueViolation as exc:
            raise ChunkAlreadyLoaded(f"{chunk} was already loaded by another process") from exc
        quarantine.insert(cur, plan, list(bad), quarantine.EXPORT)
        copied, refused = 0, []
        room = plan.budget - quarantine.counted(cur, plan.load_id) if plan.quarantine else 0
        for path in files:
            statement = copy_statement(schema.staging(plan.load_id), plan.columns, path)
            rows, left_out = rejected.copy_file(cur, statement, path, buffer, plan, room - len(refused))
            copied += rows
            refused += left_out
        if refused:  # the ledger counts the rows loaded
            quarantine.insert(cur, plan, badrows.records(plan, refused), quarantine.COPY)
            expected_rows -= len(refused)
            cur.execute(sql.SQL("UPDATE {} SET rows = %s WHERE load_id = %s AND chunk = %s").format(
                schema.table("chunk_ledger")), (expected_rows, chunk.load_id, chunk.index))
        if copied != expected_rows:
            raise VerificationError(
                f"{chunk} of {plan.table}: its files hold {copied} rows but its source files "
                f"{expected_rows}{' (less those quarantined)' if bad else ''}; the chunk was not loaded")
        faults.point("copy.before_commit")


def copy_once(plan: Plan, chunk: Chunk, files: list[Path]) -> str:
    """COPY the chunk unless the ledger holds it already (copied during the export, or by another process),
    retrying transient failures; return what happened, in words."""

    def copy(conn) -> str:
        if not ensure_staging(conn, plan, len(plan.chunks)):
            return "the load was already published by another process"
        if LoadState(plan.load_id, TableName.parse(plan.table), plan.incremental).copied(conn, chunk.index):
            return "already in the ledger (copied during the export or by another process); not loading it again"
        try:
            bad = badrows.read(files[0].parent) if files else []
            _copy(conn, plan, chunk, files, plan.chunk_rows(chunk.index) - len(bad), bad)
        except ChunkAlreadyLoaded as exc:
            return f"{exc}; keeping that copy"
        return "copied"

    return with_retries(copy, f"loading {chunk} of {plan.table}")


def load_stats(conn, plan: Plan, checksum: Checksum) -> tuple[Stats, int, int, list[tuple[str, int]]]:
    """(content statistics of the staging table with the row hash ``checksum`` and the rows the export
    quarantined, rows in the ledger, chunks in the ledger, (file, row) of the rows COPY refused)."""
    with transaction(conn, f"verifying the rows of {plan.table}") as cur:
        stats = scan.table_stats(cur, schema.staging(plan.load_id), plan.columns, checksum)
        cur.execute(sql.SQL("SELECT coalesce(sum(rows), 0), count(*) FROM {} WHERE load_id = %s").format(
            schema.table("chunk_ledger")), (plan.load_id,))
        ledger_rows, ledger_chunks = cur.fetchone()
        refused = []
        if plan.quarantine:
            stats.quarantined = quarantine.counted(cur, plan.load_id, quarantine.EXPORT)
            refused = quarantine.coordinates(cur, plan.load_id, quarantine.COPY)
    return stats, int(ledger_rows), ledger_chunks, refused


def column_checksums(conn, plan: Plan) -> dict[int, int]:
    """Per-column checksums of the staging table (``verification.scan.column_checksums``)."""
    with transaction(conn, f"checking the columns of {plan.table}") as cur:
        return scan.column_checksums(cur, schema.staging(plan.load_id), plan.columns)
