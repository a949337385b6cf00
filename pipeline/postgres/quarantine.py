"""The quarantine table (``<state schema>.quarantine``): the bad rows of loads with a bad-row budget (``badrows``),
one row each with its source coordinates, the columns at fault, the reason and its values.

Two kinds: the rows the export set aside (``found_by = 'export'``), inserted with their chunk's COPY; and the
rows PostgreSQL itself refuses - a CHECK constraint or a NOT NULL of the target table - found by ``reject`` with
one scan of the verified staging table per constraint (no bisecting of chunks: the constraint is evaluated over
every staged row), and deleted from it inside the publish (``settle``). A table's rows stay while their file's
record is the one their load made, so the rows of a failed load stay until the table's next publish.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from psycopg2 import sql

from ..badrows import BadRow, records
from ..errors import VerificationError
from ..model.naming import TableName
from ..model.plan import Plan
from . import schema
from .client import exists, transaction

EXPORT, COPY, POSTGRES = "export", "copy", "postgres"  # found by: the export, COPY, constraints
SHOWN = 5  # bad rows an over-budget failure names


def insert(cur, plan: Plan, rows: list[dict], found_by: str) -> None:
    """Quarantine ``rows`` (``badrows.records``) of the plan's load, once: a row there already stays as it is."""
    if not rows:
        return
    target = TableName.parse(plan.table)
    cur.execute(sql.SQL("""
        INSERT INTO {} (load_id, target_schema, target_table, source, source_file, row_index, row_group, columns,
                        reason, row_values, found_by, file_size, file_mtime_ns)
        SELECT %s, %s, %s, %s, r.file, r.row, r.row_group, r.columns, r.reason, r.values, %s, r.size, r.mtime_ns
          FROM jsonb_to_recordset(%s::jsonb) AS r(file text, row bigint, row_group integer, columns text[],
                                                 reason text, values jsonb, size bigint, mtime_ns bigint)
        ON CONFLICT DO NOTHING""").format(schema.table("quarantine")),
                (plan.load_id, *target, plan.source, found_by, json.dumps(rows)))


def counted(cur, load_id: str, found_by: str | None = None) -> int:
    """The rows the quarantine holds for the load (found by ``found_by`` only, when given)."""
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE load_id = %s AND (%s IS NULL OR found_by = %s)").format(
        schema.table("quarantine")), (load_id, found_by, found_by))
    return cur.fetchone()[0]


def coordinates(cur, load_id: str, found_by: str) -> list[tuple[str, int]]:
    """(file, row index) of the load's rows found by ``found_by``."""
    cur.execute(sql.SQL("SELECT source_file, row_index FROM {} WHERE load_id = %s AND found_by = %s").format(
        schema.table("quarantine")), (load_id, found_by))
    return cur.fetchall()


def first_rows(cur, load_id: str, limit: int = SHOWN) -> list[str]:
    """The load's first quarantined rows, each as "file 'f' row n: reason"."""
    cur.execute(sql.SQL("""SELECT source_file, row_index, reason FROM {} WHERE load_id = %s
                           ORDER BY source_file, row_index LIMIT %s""").format(schema.table("quarantine")),
                (load_id, limit))
    return [f"file {file!r} row {row:,}: {reason}" for file, row, reason in cur.fetchall()]


def _refusing(cur, target: TableName, plan: Plan, replace: bool) -> list[tuple[sql.Composable, str, list[str]]]:
    """What the published table will refuse that the staging table does not: per CHECK constraint (and, for an
    increment, per NOT NULL column of the table it goes into), a condition true of a staged row it refuses, the
    reason, and the columns at fault. A ``replace`` (the staging table becomes the table) keeps only the target's
    own validated checks on columns the new table has (``keep.restore``); an increment's rows are inserted into the
    target, which checks them all."""
    if not exists(cur, target.identifier()):
        return []
    staged = {c.name for c in plan.table_columns}
    cur.execute("""SELECT conname, pg_get_expr(conbin, conrelid), pg_get_constraintdef(c.oid),
                          ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = ANY(c.conkey)
                                ORDER BY attnum)
                   FROM pg_constraint c WHERE conrelid = to_regclass(%s) AND contype = 'c'
                   AND (NOT %s OR (convalidated AND coninhcount = 0)) ORDER BY conname""",
                (target.identifier().as_string(cur), replace))
    found = []
    for name, expression, definition, columns in cur.fetchall():
        if set(columns) <= staged:
            found.append((sql.SQL("({}) IS FALSE").format(sql.SQL(expression)),
                          f"the check constraint {name!r} of {target} refuses it ({definition})", list(columns)))
    if replace:  # a replace does not keep NOT NULL: the new table's columns are the files'
        return found
    cur.execute("""SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0
                   AND NOT attisdropped AND attnotnull ORDER BY attnum""", (target.identifier().as_string(cur),))
    for (column,) in cur.fetchall():
        if column in staged:
            found.append((sql.SQL("{} IS NULL").format(sql.Identifier(column)),
                          f"column {column!r} is NULL, which {target} declares NOT NULL", [column]))
    return found


def reject(conn, plan: Plan, replace: bool) -> int:
    """Quarantine the verified staged rows the target table refuses (``_refusing``; ``replace``: the staging table
    becomes it), with their coordinates; how many the quarantine holds for the load now, of either kind."""
    target = TableName.parse(plan.table)
    staged = schema.staging(plan.load_id)
    hidden = sql.SQL(" - ").join(sql.Literal(c.name) for c in plan.columns if c not in plan.table_columns)
    with transaction(conn, f"checking the rows of {plan.table} against its constraints") as cur:
        if not exists(cur, staged):  # published meanwhile, by another process
            return counted(cur, plan.load_id)
        # found again each time: the table's constraints may have changed since an earlier try
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s AND found_by = %s").format(schema.table("quarantine")),
                    (plan.load_id, POSTGRES))
        for condition, reason, columns in _refusing(cur, target, plan, replace):
            cur.execute(sql.SQL("SELECT {}, {}, to_jsonb(s) - {} FROM {} s WHERE {}").format(
                sql.Identifier(plan.file_column), sql.Identifier(plan.row_column), hidden, staged, condition))
            found = [BadRow(file, row, columns, reason, values) for file, row, values in cur.fetchall()]
            insert(cur, plan, records(plan, found), POSTGRES)
        return counted(cur, plan.load_id)


def settle(cur, plan: Plan) -> int:
    """Inside the publish: delete from the staging table the rows ``reject`` quarantined; the rows it holds then."""
    if not plan.quarantine:
        return plan.total_rows
    staged = schema.staging(plan.load_id)
    cur.execute(sql.SQL("""DELETE FROM {} s USING {} q WHERE q.load_id = %s AND q.found_by = %s
                           AND q.source_file = s.{} AND q.row_index = s.{}""").format(
        staged, schema.table("quarantine"), sql.Identifier(plan.file_column), sql.Identifier(plan.row_column)),
        (plan.load_id, POSTGRES))
    if cur.rowcount != counted(cur, plan.load_id, POSTGRES):
        raise VerificationError(f"{plan.table}: the staging table no longer holds the rows its constraints refused; "
                                "nothing was published")
    return plan.total_rows - counted(cur, plan.load_id)


def forget_stale(cur, table: TableName) -> None:
    """Inside a publish (after the files are recorded and stale loads forgotten) or a delete of removed files: forget
    the table's quarantined rows whose file is no longer recorded as their load recorded it - a replaced load's, a
    rewritten or removed file's, a failed load's once it is forgotten - but not those of a load not yet published
    (still running, or failed and kept for inspection: ``state.forget_load`` forgets them with it)."""
    if not exists(cur, schema.table("quarantine")):
        return
    cur.execute(sql.SQL("""DELETE FROM {q} q WHERE q.target_schema = %s AND q.target_table = %s
                           AND NOT EXISTS (SELECT 1 FROM {f} f WHERE f.target_schema = q.target_schema
                                           AND f.target_table = q.target_table AND f.name = q.source_file
                                           AND f.load_id = q.load_id)
                           AND NOT EXISTS (SELECT 1 FROM {loads} l WHERE l.load_id = q.load_id
                                           AND l.published_at IS NULL)""").format(
        q=schema.table("quarantine"), f=schema.table("published_files"), loads=schema.table("loads")), tuple(table))


class Quarantined(NamedTuple):
    load_id: str
    source: str  # the folder
    file: str
    row: int
    row_group: int | None
    columns: list[str]
    reason: str
    found_by: str
    values: dict
    size: int | None
    mtime_ns: int | None


def listing(conn, table: TableName) -> list[Quarantined]:
    """The table's quarantined rows, by file and row."""
    with transaction(conn, f"reading the quarantine of {table}") as cur:
        if not exists(cur, schema.table("quarantine")):
            return []
        cur.execute(sql.SQL("""SELECT load_id, source, source_file, row_index, row_group, columns, reason, found_by,
                                      row_values, file_size, file_mtime_ns
                               FROM {} WHERE target_schema = %s AND target_table = %s
                               ORDER BY source_file, row_index, load_id""").format(schema.table("quarantine")),
                    tuple(table))
        return [Quarantined(*row) for row in cur.fetchall()]


def counts(conn) -> dict[tuple[str, str], int]:
    """Quarantined rows per (schema, table)."""
    with transaction(conn, "counting quarantined rows") as cur:
        if not exists(cur, schema.table("quarantine")):
            return {}
        cur.execute(sql.SQL("SELECT target_schema, target_table, count(*) FROM {} GROUP BY 1, 2").format(
            schema.table("quarantine")))
        return {(schema, name): n for schema, name, n in cur.fetchall()}
