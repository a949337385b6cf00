"""The embedded server's password: generated once, kept in a pgpass file of mode 0600, and required of every
TCP connection (``pg_hba.conf``); a server that trusted TCP connections (earlier versions) is given one."""

from __future__ import annotations

import os
from pathlib import Path


def read_secret(passfile: Path) -> str | None:
    """The password kept in ``passfile`` (also for clients that cannot read a pgpass file: JDBC)."""
    try:
        return passfile.read_text().strip().rsplit(":", 1)[1]
    except (FileNotFoundError, IndexError):
        return None


def write_secret(passfile: Path, secret: str) -> None:
    passfile.parent.mkdir(parents=True, exist_ok=True)
    write_private(passfile, f"127.0.0.1:*:*:postgres:{secret}\n")


def write_private(path: Path, text: str, owner: os.stat_result | None = None) -> None:
    """Write ``text`` to ``path``, mode 0600 from its creation (owned by ``owner``'s user, if given)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        if owner is not None:
            os.fchown(f.fileno(), owner.st_uid, owner.st_gid)
        f.write(text)
    path.chmod(0o600)


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

    conn = psycopg2.connect(host=str(datadir), port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = 'scram-sha-256'")
        cur.execute("ALTER ROLE postgres PASSWORD %s", (secret,))
        hba = datadir / "pg_hba.conf"
        hba.write_text("".join(line.rsplit("trust", 1)[0] + "scram-sha-256\n" if _tcp_trust(line) else line + "\n"
                               for line in hba.read_text().splitlines()))
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
