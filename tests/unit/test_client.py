"""What a database failure means: SQLSTATE codes and libpq's own answer, never the server's words."""

from __future__ import annotations

import socket

import psycopg2
import pytest

from pipeline.errors import DatabaseError, TransientDatabaseError
from pipeline.postgres.client import connect_failure, describe, is_transient, transient_sqlstate


@pytest.mark.parametrize("code, transient", [
    ("08006", True), ("08001", True), ("57P01", True), ("57P03", True), ("53300", True), ("40001", True),
    ("40P01", True), ("28P01", False), ("3D000", False), ("42501", False), ("22P02", False), ("23505", False),
])
def test_sqlstates_say_whether_a_retry_may_help(code, transient):
    assert transient_sqlstate(code) is transient


def test_a_connection_lost_without_a_code_is_transient_a_programming_error_is_not():
    assert is_transient(psycopg2.OperationalError("server closed the connection unexpectedly"))
    assert is_transient(psycopg2.InterfaceError("connection already closed"))
    assert not is_transient(psycopg2.ProgrammingError("syntax"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_answering_is_transient_and_a_malformed_dsn_is_not():
    dsn = f"postgresql://someone:secret@127.0.0.1:{_closed_port()}/db"
    failure = connect_failure(dsn, psycopg2.OperationalError("connection refused"))
    assert isinstance(failure, TransientDatabaseError)
    assert "secret" not in str(failure) and "127.0.0.1" in str(failure)
    bad = connect_failure("host=127.0.0.1 sslmode=sometimes", psycopg2.OperationalError("invalid sslmode value"))
    assert type(bad) is DatabaseError


def test_a_dsn_is_described_without_its_password():
    assert describe("postgresql://u:pw@db.example:6432/sales") == "db.example:6432/sales"
    assert describe("dbname=x user=u password=pw") == "local socket:5432/x"
