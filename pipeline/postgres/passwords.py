"""The embedded server's password: generated once, kept in a pgpass file of mode 0600, and required of every
TCP connection (``pg_hba.conf``); a server that trusted TCP connections (earlier versions) is given one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import DatabaseError


def new_secret() -> str:
    """A new password: 32 random characters of [A-Za-z0-9_-] (never ':', pgpass's separator)."""
    return secrets.token_urlsafe(24)


def read_secret(passfile: Path) -> str | None:
    """The password kept in ``passfile`` (also for clients that cannot read a pgpass file: JDBC)."""
    try:
        return passfile.read_text().strip().rsplit(":", 1)[1]
    except (FileNotFoundError, IndexError):
        return None


def write_secret(passfile: Path, secret: str) -> None:
    passfile.parent.mkdir(parents=True, exist_ok=True)
    write_private(passfile, f"127.0.0.1:*:*:postgres:{secret}\n")


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` to ``path``, mode 0600 before any byte is written (owned by ``owner``, a uid and gid, if
    given); a symbolic link there is refused, not followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        if owner is not None:
            os.fchown(f.fileno(), *owner)
        f.write(text)


def trusts_tcp(datadir: Path) -> bool:
    """Whether ``pg_hba.conf`` lets TCP connections in without a password (as earlier versions made it)."""
    return any(_tcp_trust(line) for line in (datadir / "pg_hba.conf").read_text().splitlines())


def _tcp_trust(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return len(fields) >= 4 and fields[0].startswith("host") and fields[-1] == "trust"


def require_passwords(datadir: Path, secret: str, port: int) -> None:
    """Give the superuser ``secret`` (over the server's own socket, which trusts its OS user) and make every
    TCP connection need a password."""
    import psycopg2
    import psycopg2.extensions

    try:
        conn = psycopg2.connect(host=str(datadir), port=port, user="postgres", dbname="postgres")
    except psycopg2.Error as exc:
        raise DatabaseError(f"embedded PostgreSQL in {datadir}: cannot reach it on its socket to set its password "
                            f"({str(exc).strip().splitlines()[-1]}); recreate it with `make clean`") from exc
    conn.autocommit = True
    with conn.cursor() as cur:  # the verifier, not the password, goes to the server (and its log)
        verifier = psycopg2.extensions.encrypt_password(secret, "postgres", conn, "scram-sha-256")
        cur.execute("ALTER ROLE postgres PASSWORD %s", (verifier,))
        hba = datadir / "pg_hba.conf"
        text = "".join(line.rsplit("trust", 1)[0] + "scram-sha-256\n" if _tcp_trust(line) else line + "\n"
                       for line in hba.read_text().splitlines())
        with os.fdopen(os.open(hba, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW), "w") as f:
            f.write(text)
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
