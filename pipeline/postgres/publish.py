"""Publishing: whether the connecting role may replace the target, and the atomic swap of the verified
staging table into place."""

from __future__ import annotations

import logging

from psycopg2 import sql

from .. import config, faults
from ..errors import DatabaseError
from ..model.load import staging_name
from ..model.naming import TableName
from ..model.plan import Plan
from . import indexes, keep, quarantine
from .client import transaction
from .staging import drop_hidden_columns
from .state import mark_published, published_row, staging_table, state

log = logging.getLogger(__name__)


def check_can_publish(conn, table: TableName, incremental: bool = False) -> None:
    """Fail early, before any export, when the connecting role could not publish the table (``incremental``:
    insert into it, once it exists)."""
    with transaction(conn, f"checking rights on {table}") as cur:
        cur.execute("""
            SELECT current_user, has_database_privilege(current_database(), 'CREATE'),
                   (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = %s),
                   (SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass(%s)),
                   (SELECT has_table_privilege(oid, 'INSERT') FROM pg_class WHERE oid = to_regclass(%s))""",
                    (table.schema, *[table.identifier().as_string(conn)] * 2))
        user, can_create_schema, can_create_table, owns_table, can_insert = cur.fetchone()
    if incremental and can_insert is not None:
        if not can_insert:
            raise DatabaseError(f"role {user} may not insert into {table}, so it cannot append to it")
        return
    if can_create_table is None and not can_create_schema:
        raise DatabaseError(f"role {user} may not create schema {table.schema!r} for {table}")
    if can_create_table is False:
        raise DatabaseError(f"role {user} may not create tables in schema {table.schema!r}, so it cannot publish "
                            f"{table}; grant CREATE on that schema or load into another one")
    if owns_table is False:
        raise DatabaseError(f"role {user} does not own {table}, so it cannot replace it")


def move_into_place(cur, plan: Plan, target: TableName) -> None:
    """Make the load's staging table the target (which must not exist)."""
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target.schema)))
    cur.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
        staging_table(plan.load_id), sql.Identifier(target.schema)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(target.schema, staging_name(plan.load_id)), sql.Identifier(target.name)))
    cur.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(target.identifier()))


def publish(conn, plan: Plan, declared: tuple = ((), ())) -> list[str]:
    """Swap the verified staging table in as the target, atomically, and drop stale loads; with the
    ``declared`` (primary key, indexes) of config/ made on it. What it made of them, in words."""
    target = TableName.parse(plan.table)
    with transaction(conn, f"publishing {plan.table}") as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(target),))
        published = published_row(cur, target)
        if published and published[0] == plan.load_id:
            log.info("%s: load %s was already published by another process", plan.table, plan.load_id)
            return []
        # What users built on the old table (indexes, constraints, comments, grants, views) is kept: indexes
        # are built on the staging table first, so the old table is locked only for the swap itself.
        rows = quarantine.settle(cur, plan)  # the rows the target's constraints refuse go, quarantined
        drop_hidden_columns(cur, plan)
        kept = keep.capture(cur, target)
        lost = keep.restore(cur, kept, (config.postgres().state_schema, staging_name(plan.load_id)))
        made = indexes.declare(cur, staging_table(plan.load_id), plan.table, *declared)
        keep.drop_dependents(cur, kept)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target.identifier()))
        move_into_place(cur, plan, target)
        lost += keep.after_swap(cur, kept)
        mark_published(cur, target, plan, rows, replace_files=True)
        cur.execute(sql.SQL("""SELECT load_id FROM {} WHERE target_schema = %s AND target_table = %s
                               AND load_id <> %s""").format(state("loads")),
                    (target.schema, target.name, plan.load_id))
        stale = [row[0] for row in cur.fetchall()]
        for load_id in stale:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging_table(load_id)))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(state("loads")), (stale,))
        cur.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(state("chunk_ledger")), (stale,))
        quarantine.forget_stale(cur, target)  # with the stale loads: what they quarantined
    for warning in lost:
        log.warning("%s: %s", plan.table, warning)
    faults.point("publish.after_commit")
    with transaction(conn, f"analyzing {plan.table}") as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(target.identifier()))
    return made
