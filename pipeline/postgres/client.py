"""Talking to the target database: where it is, connecting, transactions, retries, and what a failure
means (SQLSTATE codes and the driver's exception classes, never the server's words, which are
translated by its ``lc_messages``)."""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from .. import config
from ..errors import DatabaseError, TransientDatabaseError, first_line

log = logging.getLogger(__name__)
T = TypeVar("T")
# Failures that may pass: connection exceptions (class 08), the server shutting down or starting up (57P0x),
# too many connections, and a serialization failure or deadlock (class 40, the transaction is simply retried).
TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
PQPING_OK, PQPING_REJECT, PQPING_NO_RESPONSE, PQPING_NO_ATTEMPT = range(4)


def target_dsn() -> str:
    """The configured target, or the embedded server's DSN (starting that server when it is not running)."""
    from . import embedded

    return config.pg_dsn() or embedded.embedded_dsn()


def describe(dsn: str) -> str:
    """Where a DSN points, without its password: host:port/dbname as user."""
    try:
        p = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "an unparseable DSN"
    host = p.get("host") or "local socket"
    return f"{host}:{p.get('port') or 5432}/{p.get('dbname') or p.get('user') or '?'}"


def is_transient(exc: psycopg2.Error) -> bool:
    """Whether a failure of a statement may pass on retry: by its SQLSTATE, or - a connection lost, which
    carries none - by the driver's exception class."""
    if exc.pgcode:
        return transient_sqlstate(exc.pgcode)
    return isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))


def transient_sqlstate(code: str) -> bool:
    return code.startswith(TRANSIENT_SQLSTATES)


def translate(exc: psycopg2.Error, doing: str) -> DatabaseError:
    message = config.redact(first_line(exc.pgerror or str(exc), None))
    message = message.removeprefix("ERROR:").strip()
    return (TransientDatabaseError if is_transient(exc) else DatabaseError)(f"{doing} failed: {message}")


def _ping(dsn: str) -> int:
    """libpq's ``PQping``: whether a server answers at ``dsn`` and accepts connections. libpq reports a
    failed connection without its SQLSTATE; ``PQping`` reads it (57P03, "cannot connect now", is REJECT)."""
    import psycopg2._psycopg

    ping = ctypes.CDLL(psycopg2._psycopg.__file__).PQping  # the libpq psycopg2 is linked with
    ping.argtypes, ping.restype = [ctypes.c_char_p], ctypes.c_int
    return ping(dsn.encode())


def connect_failure(dsn: str, exc: psycopg2.Error) -> DatabaseError:
    """A failed connection: terminal when a server answered and accepts connections (so it refused these
    credentials, database or address) or the DSN is malformed; transient when none answered or it is
    starting up or shutting down."""
    reason = config.redact(first_line(exc, None))
    try:  # the ping waits no longer than a connection would
        probe = psycopg2.extensions.make_dsn(dsn, connect_timeout=config.postgres().connect_timeout)
    except psycopg2.ProgrammingError:  # a DSN libpq cannot parse
        return DatabaseError(f"cannot connect to PostgreSQL at {describe(dsn)}: {reason}")
    kind = DatabaseError if _ping(probe) in (PQPING_OK, PQPING_NO_ATTEMPT) else TransientDatabaseError
    return kind(f"cannot connect to PostgreSQL at {describe(dsn)}: {reason}")


def connect() -> psycopg2.extensions.connection:
    """A connection to the target database."""
    dsn = target_dsn()
    try:
        return psycopg2.connect(dsn, connect_timeout=config.postgres().connect_timeout,
                                application_name="parquet-pg-pipeline")
    except psycopg2.Error as exc:
        raise connect_failure(dsn, exc) from exc


def with_retries(work: Callable[[psycopg2.extensions.connection], T], doing: str) -> T:
    """Run ``work`` on a fresh connection, again on a transient failure (connection lost, server
    restarting), at most ``[postgres] retries`` more times. ``work`` must be safe to repeat:
    every unit of it is one transaction."""
    cfg = config.postgres()
    for attempt in range(cfg.retries + 1):
        try:
            with connection() as conn:
                return work(conn)
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
            raise translate(exc, doing) from exc
        raise


@contextmanager
def connection() -> Iterator[psycopg2.extensions.connection]:
    """A connection, closed after the block."""
    conn = connect()
    try:
        yield conn
    finally:
        conn.close()


def exists(cur, relation: sql.Composable) -> bool:
    """Whether the table (or view, index) exists: a reader finds no state before the first load, and a user may
    drop a table the pipeline published."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (relation.as_string(cur),))
    return cur.fetchone()[0]


def lock(cur, name: str) -> None:
    """Hold the transaction-level advisory lock ``name`` until the transaction ends: writers of one table (or one
    load) take turns."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
