"""An SQLAlchemy ``Inspector`` on a psycopg2 connection inside its open transaction (the publish's), so that
reflection sees what the transaction sees and leaves its state alone."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import sqlalchemy as sa
from psycopg2.extensions import TRANSACTION_STATUS_INTRANS
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseError


class _Borrowed(PGDialect_psycopg2):
    """psycopg2 dialect for a connection SQLAlchemy must not own. With the stock
    dialect, create_engine(creator=...) rolls the connection back after its
    first-connect initialize() (sqlalchemy/engine/create.py), Connection.close()
    rolls back, and on_connect() installs a UUID typecaster on it."""

    supports_statement_cache = True
    do_rollback = do_commit = do_close = do_terminate = lambda self, dbapi_connection: None
    on_connect = lambda self: None  # noqa: E731


@contextmanager
def session(cur, inspect=False):
    """Run with an empty search_path, transaction-local, so pg_get_*def() output
    qualifies every non-catalog name and replayed DDL resolves as it did.
    Optionally yield an Inspector on cur's connection, in its transaction."""
    if cur.connection.autocommit:  # set_config(..., true) would last one statement
        raise DatabaseError("reflection must run inside a transaction, not in autocommit mode")
    with ExitStack() as stack:
        insp = None
        if inspect:  # connect first: dialect initialize() wants the caller's search_path
            registry.register("postgresql.keep_borrowed", __name__, "_Borrowed")  # idempotent; on use, not import
            engine = sa.create_engine("postgresql+keep_borrowed://", creator=lambda: cur.connection,
                                      poolclass=StaticPool, pool_reset_on_return=None, use_native_hstore=False)
            insp = _Translated(sa.inspect(stack.enter_context(engine.connect())))  # bound to this Connection
        cur.execute("SELECT current_setting('search_path'), set_config('search_path', '', true)")
        old = cur.fetchone()[0]
        try:
            yield insp
        finally:  # after an SQL error the caller's rollback undoes set_config anyway
            if cur.connection.info.transaction_status == TRANSACTION_STATUS_INTRANS:
                cur.execute("SELECT set_config('search_path', %s, true)", (old,))


class _Translated:
    """An Inspector whose failures are the driver's own (SQLAlchemy wraps them), so that the publish
    transaction sorts and reports them like any other."""

    def __init__(self, inspector):
        self._inspector = inspector

    def __getattr__(self, name):
        method = getattr(self._inspector, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                raise exc.orig from exc

        return call
