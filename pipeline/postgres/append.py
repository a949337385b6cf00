"""Publishing an increment (``append`` and ``merge`` modes): its verified rows go into the target table (merged
on the key: ``merge``) and its files into the record of published files, in one transaction - so each file is
either in the table and recorded, or neither. The first increment of a table becomes the table, as a replace
load does. The rows of a file loaded again (rewritten, its name in ``source_file_column``) are deleted first, in
the same transaction; ``forget_files`` deletes those of removed files."""

from __future__ import annotations

import psycopg2.errors
from psycopg2 import sql

from .. import faults
from ..errors import SourceError, StateReset, VerificationError
from ..model.naming import TableName
from ..model.plan import Plan
from ..types.mapping import Column
from . import indexes, merge, quarantine
from .client import transaction
from .publish import move_into_place
from .staging import drop_hidden_columns
from .state import discard_load, mark_published, published_row, staging_table, state

Declared = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]  # config/'s (primary_key, indexes)


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


def check_columns(conn, target: TableName, columns: list[Column], source: str) -> None:
    """Before any export: the target's columns must be the files' columns, with the same types."""
    probe = sql.Identifier("pipeline_probe")
    with transaction(conn, f"comparing the columns of {target} with the source") as cur:
        cur.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(probe, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns)))
        problem = _drift(cur, target, probe, f"the new files of {source!r}")
    if problem:
        raise SourceError(f"cannot add the new files to {target}: {problem}; nothing was loaded - load it with "
                          "--mode replace to take the files' columns")


def publish_increment(conn, plan: Plan, declared: Declared = ((), ())) -> str:
    """Insert (``append``) or merge (``merge``) the verified increment into the target and record its files, in
    one transaction; what it did, in words. ``declared``: the indexes config/ declares for the table."""
    target = TableName.parse(plan.table)
    with transaction(conn, f"publishing into {plan.table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(target),))
        cur.execute(sql.SQL("""SELECT name, size, mtime_ns, digest, load_id FROM {}
                               WHERE target_schema = %s AND target_table = %s AND name = ANY(%s) ORDER BY name
                            """).format(state("published_files")), (*target, [f.name for f in plan.files]))
        # recorded meanwhile: any record but the earlier version of a rewritten file this increment expects
        recorded = [(name, load_id) for name, size, mtime_ns, digest, load_id in cur.fetchall()
                    if plan.rewritten.get(name) != [size, mtime_ns, digest]]
        held = published_row(cur, target)
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (target.identifier().as_string(cur),))
        exists = cur.fetchone()[0]
        if recorded and held and all(load_id == plan.load_id for _, load_id in recorded):
            return f"load {plan.load_id} was already published by another process"
        if held and recorded:  # superseded: this increment can never be published, so it goes
            discard_load(cur, plan.load_id)
            superseded = recorded[0][0]
        else:
            superseded = None
            said = _publish(cur, plan, target, held, exists, declared)
    if superseded:
        raise StateReset(f"another run loaded {superseded!r} into {plan.table} while this one loaded it; nothing "
                         "of this increment was published - run again to load the files still new")
    faults.point("publish.after_commit")
    return said


def _publish(cur, plan: Plan, target: TableName, held: tuple[str, int] | None, exists: bool,
             declared: Declared) -> str:
    staged = staging_table(plan.load_id)
    merging = plan.mode == "merge"
    staged_rows = quarantine.settle(cur, plan)
    rows = staged_rows - (merge.check_keys(cur, plan, staged) if merging else 0)
    drop_hidden_columns(cur, plan)  # the file and row columns only the key's deduplication or the quarantine needed
    deleted = 0
    if not exists:  # the first increment, or the table was dropped: it becomes the table
        _become_the_table(cur, plan, target)
        made = indexes.declare(cur, target.identifier(), plan.table, *declared)  # before the merge key's
        if merging:
            merge.ensure_unique(cur, target, plan.key)
        total, replaced, added = rows, 0, rows
    else:  # a table this pipeline published, or one a user made for it
        problem = _drift(cur, target, staged, "the increment's files")
        if problem:
            raise SourceError(f"cannot load into {plan.table}: {problem} (it changed during the load); "
                              "nothing was published")
        made = indexes.declare(cur, target.identifier(), plan.table, *declared)  # before the merge key's
        if plan.rewritten:
            deleted = delete_file_rows(cur, plan.table, plan.file_column, list(plan.rewritten))
        if merging:
            replaced, added = merge.upsert(cur, plan, target, staged, rows)
        else:
            columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.table_columns)
            try:
                cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    target.identifier(), columns, columns, staged))
            except psycopg2.errors.UniqueViolation as exc:  # a key the table holds already (a declared one, say)
                detail = (exc.diag.message_detail or "").rstrip(".")
                raise SourceError(f"cannot append to {plan.table}: the new files hold a row its unique index "
                                  f"{exc.diag.constraint_name!r} refuses ({detail}); nothing was published") from exc
            if cur.rowcount != rows:
                raise VerificationError(f"appending to {plan.table} inserted {cur.rowcount:,} rows where the "
                                        f"increment holds {rows:,}; nothing was published")
            replaced, added = 0, rows
        cur.execute(sql.SQL("DROP TABLE {}").format(staged))
        total = held[1] + added - deleted if held else _count(cur, target)
    mark_published(cur, target, plan, total, replace_files=not exists)
    quarantine.forget_stale(cur, target)
    cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(state("chunk_ledger")), (plan.load_id,))
    files = f"{staged_rows:,} rows from {len(plan.files):,} files"
    if rows != staged_rows:
        files += f" ({staged_rows - rows:,} earlier rows of a key left out)"
    if staged_rows != plan.total_rows:
        files += f" ({plan.total_rows - staged_rows:,} bad rows quarantined)"
    done = f"merged {files}: {replaced:,} replaced, {added:,} added" if merging else f"appended {files}"
    if deleted:
        done += f", after deleting the {deleted:,} rows of {len(plan.rewritten):,} rewritten files"
    if made:
        done += f"; made the {', '.join(made)} config/ declares"
    return f"{done}; the table holds {total:,}"


def delete_file_rows(cur, table: str, file_column: str, names: list[str]) -> int:
    """Delete the table's rows from the recorded files ``names`` (by ``file_column``), and their records; how many
    rows, which must be the rows recorded for those files (append mode: no row of theirs was replaced since)."""
    target = TableName.parse(table)
    cur.execute(sql.SQL("""DELETE FROM {} WHERE target_schema = %s AND target_table = %s AND name = ANY(%s)
                           RETURNING rows""").format(state("published_files")), (*target, names))
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


def _become_the_table(cur, plan: Plan, target: TableName) -> None:
    if not plan.whole_table:  # the table was dropped after this increment was scheduled, leaving out its files
        raise StateReset(f"{plan.table} was dropped while this increment was loaded; nothing was published - run "
                         "again to load every file of the folder")
    move_into_place(cur, plan, target)


def forget_files(conn, table: str, file_column: str, names: list[str]) -> str:
    """Delete the rows of the recorded files ``names`` (removed from the folder: ``on_removed = "delete"``) and their
    records, in one transaction; what it did, in words."""
    target = TableName.parse(table)
    with transaction(conn, f"deleting the rows of removed files from {table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(target),))
        cur.execute(sql.SQL("""SELECT name FROM {} WHERE target_schema = %s AND target_table = %s AND name = ANY(%s)
                            """).format(state("published_files")), (*target, names))
        still = [row[0] for row in cur.fetchall()]
        if published_row(cur, target) is None:
            return f"{table} is not there: no rows of removed files to delete"
        if not still:
            return "another process deleted the rows of the removed files already"
        deleted = delete_file_rows(cur, table, file_column, still)
        cur.execute(sql.SQL("""UPDATE {} SET rows = rows - %s, published_at = now()
                               WHERE target_schema = %s AND target_table = %s""").format(state("published")),
                    (deleted, *target))
        quarantine.forget_stale(cur, target)
    faults.point("publish.after_commit")
    return f"deleted the {deleted:,} rows of {len(still):,} removed files ({still[0]!r} ...)"
