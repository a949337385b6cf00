"""Publishing an increment (``append`` and ``merge`` modes): its verified rows go into the target table (merged
on the key: ``merge``) and its files into the record of published files, in one transaction - so each file is
either in the table and recorded, or neither. The first increment of a table becomes the table, as a replace
load does."""

from __future__ import annotations

from psycopg2 import sql

from .. import faults
from ..errors import SourceError, StateReset, VerificationError
from ..model.naming import TableName
from ..model.plan import Plan
from ..types.mapping import Column
from . import merge
from .client import transaction
from .publish import move_into_place
from .state import discard_load, mark_published, published_row, staging_table, state


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


def publish_increment(conn, plan: Plan) -> str:
    """Insert (``append``) or merge (``merge``) the verified increment into the target and record its files, in
    one transaction; what it did, in words."""
    target = TableName.parse(plan.table)
    names = [f.name for f in plan.files]
    with transaction(conn, f"publishing into {plan.table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(target),))
        cur.execute(sql.SQL("""SELECT name, load_id FROM {} WHERE target_schema = %s AND target_table = %s
                               AND name = ANY(%s) ORDER BY name""").format(state("published_files")),
                    (*target, names))
        recorded = cur.fetchall()
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
            said = _publish(cur, plan, target, held, exists)
    if superseded:
        raise StateReset(f"another run loaded {superseded!r} into {plan.table} while this one loaded it; nothing "
                         "of this increment was published - run again to load the files still new")
    faults.point("publish.after_commit")
    return said


def _publish(cur, plan: Plan, target: TableName, held: tuple[str, int] | None, exists: bool) -> str:
    staged = staging_table(plan.load_id)
    merging = plan.mode == "merge"
    if merging:
        merge.check_keys(cur, plan, staged)
    if not exists:  # the first increment, or the table was dropped: it becomes the table
        _become_the_table(cur, plan, target)
        if merging:
            merge.ensure_unique(cur, target, plan.key)
        total, replaced, added = plan.total_rows, 0, plan.total_rows
    else:  # a table this pipeline published, or one a user made for it
        problem = _drift(cur, target, staged, "the increment's files")
        if problem:
            raise SourceError(f"cannot load into {plan.table}: {problem} (it changed during the load); "
                              "nothing was published")
        if merging:
            replaced, added = merge.upsert(cur, plan, target, staged)
        else:
            columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.columns)
            cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                target.identifier(), columns, columns, staged))
            if cur.rowcount != plan.total_rows:
                raise VerificationError(f"appending to {plan.table} inserted {cur.rowcount:,} rows where the "
                                        f"increment holds {plan.total_rows:,}; nothing was published")
            replaced, added = 0, plan.total_rows
        cur.execute(sql.SQL("DROP TABLE {}").format(staged))
        total = held[1] + added if held else _count(cur, target)
    mark_published(cur, target, plan, total, replace_files=not exists)
    cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = %s").format(state("chunk_ledger")), (plan.load_id,))
    files = f"{plan.total_rows:,} rows from {len(plan.files):,} files"
    done = f"merged {files}: {replaced:,} replaced, {added:,} added" if merging else f"appended {files}"
    return f"{done}; the table holds {total:,}"


def _count(cur, target: TableName) -> int:
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(target.identifier()))
    return cur.fetchone()[0]


def _become_the_table(cur, plan: Plan, target: TableName) -> None:
    if not plan.whole_table:  # the table was dropped after this increment was scheduled, leaving out its files
        raise StateReset(f"{plan.table} was dropped while this increment was loaded; nothing was published - run "
                         "again to load every file of the folder")
    move_into_place(cur, plan, target)
