"""The ``replace`` mode: whether the connecting role may publish the target, and the atomic swap of the verified
staging table into place."""

from __future__ import annotations

import logging

from psycopg2 import sql

from .. import config, faults
from ..errors import DatabaseError
from ..model.load import staging_name
from ..model.naming import TableName
from ..model.plan import Plan
from . import indexes, keep, quarantine, schema
from .client import lock, transaction
from .staging import drop_hidden_columns
from .state import LoadState, forget_load, mark_published
from .writes import Published, Writer

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
        schema.staging(plan.load_id), sql.Identifier(target.schema)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(target.schema, staging_name(plan.load_id)), sql.Identifier(target.name)))
    cur.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(target.identifier()))


class Replace(Writer):
    """``replace``: the verified staging table is swapped in as the target, atomically, keeping what users built on
    the old table (``keep``); stale loads of the table are forgotten."""

    mode = "replace"
    rebuilds_table = True

    def check(self, conn, plan: Plan) -> None:
        check_can_publish(conn, TableName.parse(plan.table))

    def publish(self, conn, plan: Plan) -> Published:
        target = TableName.parse(plan.table)
        with transaction(conn, f"publishing {plan.table}") as cur:
            lock(cur, str(target))
            if LoadState(plan.load_id, target, False).is_published(cur):
                log.info("%s: load %s was already published by another process", plan.table, plan.load_id)
                return Published(self.mode, plan.total_rows, 0, len(plan.files), already=True)
            # What users built on the old table (indexes, constraints, comments, grants, views) is kept: indexes
            # are built on the staging table first, so the old table is locked only for the swap itself.
            rows = quarantine.settle(cur, plan)  # the rows the target's constraints refuse go, quarantined
            drop_hidden_columns(cur, plan, rewrite=True)
            kept = keep.capture(cur, target)
            lost = keep.restore(cur, kept, (config.postgres().state_schema, staging_name(plan.load_id)))
            made = indexes.declare(cur, schema.staging(plan.load_id), plan.table, plan.options)
            keep.drop_dependents(cur, kept)
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target.identifier()))
            move_into_place(cur, plan, target)
            lost += keep.after_swap(cur, kept)
            indexes.rename_made(cur, target, staging_name(plan.load_id))
            mark_published(cur, target, plan, rows, replace_files=True)
            cur.execute(sql.SQL("""SELECT load_id FROM {} WHERE target_schema = %s AND target_table = %s
                                   AND load_id <> %s""").format(schema.table("loads")), (*target, plan.load_id))
            for (stale,) in cur.fetchall():
                forget_load(cur, stale)
            quarantine.forget_stale(cur, target)  # with the stale loads: what they quarantined
        for warning in lost:
            log.warning("%s: %s", plan.table, warning)
        faults.point("publish.after_commit")
        with transaction(conn, f"analyzing {plan.table}") as cur:
            cur.execute(sql.SQL("ANALYZE {}").format(target.identifier()))
        return Published(self.mode, rows, rows, len(plan.files), plan.total_rows - rows, made=tuple(made))
