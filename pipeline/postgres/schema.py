"""The pipeline's state schema in the target database (``[postgres] state_schema``, default ``pipeline``): its
tables' names and their creation.

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

Writers call ``ensure_schema`` first; readers find no state before the first load and say so (``state``).
"""

from __future__ import annotations

from psycopg2 import sql

from .. import config
from ..model.load import staging_name
from .client import exists, lock, transaction

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


def table(name: str) -> sql.Identifier:
    """A table of the state schema."""
    return sql.Identifier(config.postgres().state_schema, name)


def staging(load_id: str, rewritten: bool = False) -> sql.Identifier:
    """The staging table of load ``load_id`` (``rewritten``: the table it is written anew into, then renamed to)."""
    return table(staging_name(load_id) + ("_new" if rewritten else ""))


def ensure_schema(conn) -> None:
    """Create the state schema and its tables where they are missing (idempotent, safe concurrently)."""
    schema = config.postgres().state_schema
    with transaction(conn, "creating the pipeline's state tables") as cur:
        if exists(cur, table("quarantine")):  # the newest of the tables: older states get what they lack
            return
        lock(cur, "parquet-pg-pipeline state")
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
            """).format(loads=table("loads"), ledger=table("chunk_ledger"), published=table("published"),
                        files=table("published_files")))
        cur.execute(sql.SQL(_QUARANTINE).format(quarantine=table("quarantine")))
