"""The ``append`` mode, and what ``merge`` shares with it: an increment's verified rows go into the target table
and its files into the record of published files, in one transaction - so each file is either in the table and
recorded, or neither. The first increment of a table becomes the table, as a replace load does. The rows of a
file loaded again (rewritten, its name in ``source_file_column``) are deleted first, in the same transaction;
``delete_removed`` deletes those of removed files."""

from __future__ import annotations

import logging
from typing import NamedTuple

import psycopg2.errors
from psycopg2 import sql

from .. import faults
from ..errors import SourceError, StateReset, VerificationError
from ..model.naming import TableName
from ..model.plan import Plan
from . import indexes, quarantine, schema
from .client import exists, lock, transaction
from .replace import check_can_publish, move_into_place
from .staging import drop_hidden_columns
from .state import forget_load, held, mark_published
from .writes import Published, Writer

log = logging.getLogger(__name__)


def _columns(cur, table: sql.Composable) -> dict[str, str]:
    """The table's columns and their types as PostgreSQL spells them (``format_type``), in order."""
    cur.execute("""SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
                   WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
                (table.as_string(cur),))
    return dict(cur.fetchall())


def _drift(cur, target: TableName, source: sql.Composable, what: str) -> str | None:
    """How the target's columns differ from ``source``'s (a table with the increment's columns), or None."""
    have, want = _columns(cur, target.identifier()), _columns(cur, source)
    if not have:
        return None
    for name, pg_type in want.items():
        if name not in have:
            return f"{target} has no column {name!r}, which {what} hold ({pg_type})"
        if have[name] != pg_type:
            return f"column {name!r} is {pg_type} in {what} but {have[name]} in {target}"
    extra = [name for name in have if name not in want]
    return f"{target} has a column {extra[0]!r} ({have[extra[0]]}) that {what} lack" if extra else None


class Append(Writer):
    """``append``: the verified increment's rows are inserted into the target, and its files recorded."""

    mode = "append"

    def check(self, conn, plan: Plan) -> None:
        """The role may insert into the target (or create it), and the target's columns are the files'."""
        target = TableName.parse(plan.table)
        check_can_publish(conn, target, incremental=True)
        probe = sql.Identifier("pipeline_probe")
        with transaction(conn, f"comparing the columns of {target} with the source") as cur:
            cur.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(probe, sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in plan.table_columns)))
            problem = _drift(cur, target, probe, f"the new files of {plan.source!r}")
        if problem:
            raise SourceError(f"cannot add the new files to {target}: {problem}; nothing was loaded - load it with "
                              "--mode replace to take the files' columns")

    def publish(self, conn, plan: Plan) -> Published:
        """Write the increment into the target and record its files, in one transaction; an increment another run
        superseded (it loaded one of these files first) is forgotten, and the run told to start again."""
        target = TableName.parse(plan.table)
        with transaction(conn, f"publishing into {plan.table}") as cur:
            lock(cur, str(target))
            cur.execute(sql.SQL("""SELECT name, size, mtime_ns, digest, load_id FROM {}
                                   WHERE target_schema = %s AND target_table = %s AND name = ANY(%s) ORDER BY name
                                """).format(schema.table("published_files")), (*target, [f.name for f in plan.files]))
            # recorded meanwhile: any record but the earlier version of a rewritten file this increment expects
            recorded = [(name, load_id) for name, size, mtime_ns, digest, load_id in cur.fetchall()
                        if plan.rewritten.get(name) != [size, mtime_ns, digest]]
            holds = held(cur, target)
            if recorded and holds and all(load_id == plan.load_id for _, load_id in recorded):
                return Published(self.mode, holds[1], 0, len(plan.files), already=True)
            superseded = recorded[0][0] if holds and recorded else None
            if superseded:  # this increment can never be published, so it goes
                forget_load(cur, plan.load_id)
            else:
                done = self._publish(cur, plan, target, holds)
        if superseded:
            raise StateReset(f"another run loaded {superseded!r} into {plan.table} while this one loaded it; nothing "
                             "of this increment was published - run again to load the files still new")
        faults.point("publish.after_commit")
        return done

    def _publish(self, cur, plan: Plan, target: TableName, holds: tuple[str, int] | None) -> Published:
        staged = schema.staging(plan.load_id)
        staged_rows = quarantine.settle(cur, plan)
        rows = staged_rows - self.left_out(cur, plan, staged)
        first = not exists(cur, target.identifier())  # the first increment, or the table was dropped
        if first and not plan.whole_table:  # the table was dropped after it was scheduled, leaving out its files
            raise StateReset(f"{plan.table} was dropped while this increment was loaded; nothing was published - run "
                             "again to load every file of the folder")
        drop_hidden_columns(cur, plan, rewrite=first)  # the file and row columns only the load itself needed
        if first:  # it becomes the table
            move_into_place(cur, plan, target)
        else:  # a table this pipeline published, or one a user made for it
            problem = _drift(cur, target, staged, "the increment's files")
            if problem:
                raise SourceError(f"cannot load into {plan.table}: {problem} (it changed during the load); "
                                  "nothing was published")
        made = indexes.declare(cur, target.identifier(), plan.table, plan.options)  # before the merge key's
        needed = self.prepare(cur, plan, target)
        deleted = replaced = 0
        total = rows
        if not first:
            if plan.rewritten:
                deleted = delete_file_rows(cur, plan.table, plan.file_column, list(plan.rewritten))
            replaced = self.write_rows(cur, plan, target, staged, rows)
            cur.execute(sql.SQL("DROP TABLE {}").format(staged))
            total = holds[1] + rows - replaced - deleted if holds else _count(cur, target)
        mark_published(cur, target, plan, total, replace_files=first)
        quarantine.forget_stale(cur, target)
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(schema.table("chunk_ledger")), (plan.load_id,))
        return Published(self.mode, total, staged_rows, len(plan.files), plan.total_rows - staged_rows,
                         staged_rows - rows, replaced, deleted, len(plan.rewritten), tuple(made), tuple(needed))

    def left_out(self, cur, plan: Plan, staged: sql.Composable) -> int:
        """The staged rows that do not go into the table: none."""
        return 0

    def prepare(self, cur, plan: Plan, target: TableName) -> list[str]:
        """What the table needs before the rows go in, and what it made of it, in words: with a
        ``source_file_column``, an index to find a file's rows by (a rewritten or removed file's rows are deleted
        by it)."""
        column = plan.options.source_file_column
        return [f"index ({column}) to find a file's rows by"] if column and indexes.ensure_lookup(
            cur, target, column) else []

    def write_rows(self, cur, plan: Plan, target: TableName, staged: sql.Composable, rows: int) -> int:
        """Insert the ``rows`` staged rows into the target; how many of its rows they replaced (none)."""
        columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.table_columns)
        try:
            cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                target.identifier(), columns, columns, staged))
        except psycopg2.errors.UniqueViolation as exc:  # a key the table holds already (a declared one, say)
            detail = (exc.diag.message_detail or "").rstrip(".")
            raise SourceError(f"cannot append to {plan.table}: the new files hold a row its unique index "
                              f"{exc.diag.constraint_name!r} refuses ({detail}); nothing was published") from exc
        if cur.rowcount != rows:
            raise VerificationError(f"appending to {plan.table} inserted {cur.rowcount:,} rows where the increment "
                                    f"holds {rows:,}; nothing was published")
        return 0


def delete_file_rows(cur, table: str, file_column: str, names: list[str]) -> int:
    """Delete the table's rows from the recorded files ``names`` (by ``file_column``), and their records; how many
    rows, which must be the rows recorded for those files (append mode: no row of theirs was replaced since)."""
    target = TableName.parse(table)
    cur.execute(sql.SQL("""DELETE FROM {} WHERE target_schema = %s AND target_table = %s AND name = ANY(%s)
                           RETURNING rows""").format(schema.table("published_files")), (*target, names))
    recorded = sum(row[0] for row in cur.fetchall())
    cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(target.identifier(), sql.Identifier(file_column)),
                (names,))
    deleted = cur.rowcount
    if deleted != recorded:
        raise VerificationError(f"{table} holds {deleted:,} rows from {len(names):,} files ({names[0]!r} ...) in "
                                f"its column {file_column!r}, where {recorded:,} were loaded from them; nothing was "
                                "changed")
    return deleted


def _count(cur, target: TableName) -> int:
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(target.identifier()))
    return cur.fetchone()[0]


def delete_removed(conn, table: str, file_column: str, names: list[str]) -> Removed:
    """Delete the rows of the recorded files ``names`` (removed from the folder: ``on_removed = "delete"``) and their
    records, in one transaction."""
    target = TableName.parse(table)
    with transaction(conn, f"deleting the rows of removed files from {table}") as cur:
        lock(cur, str(target))
        cur.execute(sql.SQL("""SELECT name FROM {} WHERE target_schema = %s AND target_table = %s AND name = ANY(%s)
                            """).format(schema.table("published_files")), (*target, names))
        still = [row[0] for row in cur.fetchall()]
        if held(cur, target) is None or not still:
            return Removed(still, 0, held(cur, target) is not None)
        deleted = delete_file_rows(cur, table, file_column, still)
        cur.execute(sql.SQL("""UPDATE {} SET rows = rows - %s, published_at = now()
                               WHERE target_schema = %s AND target_table = %s""").format(schema.table("published")),
                    (deleted, *target))
        quarantine.forget_stale(cur, target)
    faults.point("publish.after_commit")
    return Removed(still, deleted, True)


class Removed(NamedTuple):
    """What ``delete_removed`` did: the files whose rows it deleted (none: another process did), how many rows."""

    files: list[str]
    rows: int
    table_there: bool
