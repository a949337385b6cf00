"""An embedded PostgreSQL server: the default target when no database is configured.

It lives under the state directory (``<state>/postgres``) and is started on first use by
whichever process needs it (a file lock keeps that to one). Only the user who runs the
pipeline can reach it: it listens on 127.0.0.1 with ``scram-sha-256`` and a password
generated at ``initdb``, kept in a pgpass file of mode 0600 in the state dir (the DSN names
the file, never the password), and on a Unix socket inside its data directory, which only
the server's OS user can enter (mode 0700), so trust stays only where the operating system
decides who connects. A server made by an earlier version, which trusted every TCP
connection, is migrated on start. When run as root, the server runs as the ``postgres`` OS
user, because ``initdb`` refuses root. The test suite uses the same code for its throwaway
servers.

    python -m pipeline.postgres.embedded start|stop|remove|status|dsn [DATADIR]
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

from .. import config
from ..errors import DatabaseError
from .passwords import new_secret, read_secret, require_passwords, trusts_tcp, write_private, write_secret

log = logging.getLogger(__name__)
DATABASE = "pipeline"
FIRST_PORT = 54329
PASSFILE = "postgres.pgpass"  # in the state dir (or beside a test server's data directory)


def _bin(tool: str) -> str:
    for folder in [os.environ.get("PIPELINE_PG_BIN", "")] + sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    ):
        if folder and os.path.exists(os.path.join(folder, tool)):
            return os.path.join(folder, tool)
    found = shutil.which(tool)
    if not found:
        raise DatabaseError(
            f"no PostgreSQL server binaries ({tool}) found for the embedded database; install "
            "PostgreSQL or set PIPELINE_PG_DSN to an existing server")
    return found


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(args: list[str], what: str) -> str:
    proc = subprocess.run(_as_server_user() + args, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DatabaseError(f"embedded PostgreSQL: {what} failed: {detail[-1] if detail else proc.returncode}")
    return proc.stdout


ROOT_HOME = Path("/var/tmp/parquet-pg-pipeline")  # as root: the servers' folders (the state dir is root's alone)


def default_datadir() -> Path:
    """``<state>/postgres``; as root, ``ROOT_HOME/<digest>/postgres``, which the postgres user can reach."""
    datadir = config.state_dir() / "postgres"
    if os.geteuid() == 0:
        digest = hashlib.sha256(str(datadir).encode()).hexdigest()[:10]
        datadir = ROOT_HOME / digest / "postgres"
    return datadir


def _parent_folder(datadir: Path) -> None:
    """Make the data directory's parent, which holds the lock (and a test server's password file). Under
    ``ROOT_HOME`` it is root's, mode 0711: the postgres user passes through to its data directory (0700,
    its own) but can neither list nor write it. Other folders are the caller's and are left as they are."""
    parent = datadir.parent
    if os.geteuid() == 0 and ROOT_HOME in parent.parents:
        for folder in (ROOT_HOME, parent):
            folder.mkdir(mode=0o711, exist_ok=True)
            os.chown(folder, 0, 0)
            folder.chmod(0o711)
    else:
        parent.mkdir(parents=True, exist_ok=True)


def _running_port(datadir: Path) -> int | None:
    pid_file = datadir / "postmaster.pid"
    if not pid_file.exists():
        return None
    status = subprocess.run(_as_server_user() + [_bin("pg_ctl"), "status", "-D", str(datadir)],
                            capture_output=True)
    if status.returncode != 0:
        return None
    lines = pid_file.read_text().splitlines()
    return int(lines[3]) if len(lines) > 3 else None


def _free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise DatabaseError(f"no free port for the embedded PostgreSQL from {start}")


def dsn_for(port: int, passfile: Path, database: str = DATABASE) -> str:
    """The server's DSN: TCP on 127.0.0.1, the password in ``passfile`` (libpq reads it; it is not in the DSN)."""
    return f"postgresql://postgres@127.0.0.1:{port}/{database}?passfile={urllib.parse.quote(str(passfile), safe='')}"


def start(datadir: Path, port: int | None = None, durable: bool = True, passfile: Path | None = None) -> str:
    """Start (initialising if needed) the server in ``datadir``; return its DSN. Idempotent. ``passfile``:
    where its password is kept (default: beside the data directory)."""
    datadir = datadir.resolve()
    passfile = passfile or datadir.parent / PASSFILE
    _parent_folder(datadir)
    with open(datadir.parent / f".{datadir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        secret = read_secret(passfile)
        if not (datadir / "PG_VERSION").exists():
            secret = new_secret()
            _initdb(datadir, secret)
            write_secret(passfile, secret)
        running, trusting = _running_port(datadir), trusts_tcp(datadir)
        if running and secret and not trusting:
            return dsn_for(running, passfile)
        if not running:
            running = port or _free_port(FIRST_PORT)
            options = [f"-c listen_addresses=127.0.0.1 -p {running} -k {datadir}",
                       "-c max_wal_size=4GB -c shared_buffers=256MB -c max_connections=50"]
            if not durable:
                options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            _run([_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(datadir), "-l", str(datadir / "server.log"),
                  "-o", " ".join(options)], f"starting the server in {datadir} (see its server.log)")
        if trusting:
            log.warning("the embedded PostgreSQL in %s let every local user connect over TCP without a password "
                        "(made by an earlier version); it now asks for the password in %s", datadir, passfile)
        elif secret is None:
            log.warning("the password file %s of the embedded PostgreSQL in %s is missing; a new password was "
                        "set", passfile, datadir)
        if secret is None or trusting:
            secret = secret or new_secret()
            require_passwords(datadir, secret, running)
            write_secret(passfile, secret)
        _create_database(running, passfile)
        return dsn_for(running, passfile)


def _initdb(datadir: Path, secret: str) -> None:
    """A new cluster in ``datadir`` (0700, the server user's): trust on its socket, scram-sha-256 on TCP."""
    datadir.mkdir(mode=0o700, exist_ok=True)
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if owner:
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
    pwfile = datadir.parent / f".{datadir.name}.pw"  # beside the data directory, for initdb only
    write_private(pwfile, secret + "\n", owner=(owner.pw_uid, owner.pw_gid) if owner else None)
    try:
        _run([_bin("initdb"), "-D", str(datadir), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
              f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-instructions"], "initdb")
    finally:
        pwfile.unlink()


def _create_database(port: int, passfile: Path) -> None:
    import psycopg2
    from psycopg2 import sql

    try:
        conn = psycopg2.connect(dsn_for(port, passfile, "postgres"))
    except psycopg2.Error as exc:
        raise DatabaseError(f"embedded PostgreSQL: cannot connect on port {port} with the password in {passfile} "
                            f"({str(exc).strip().splitlines()[-1]}); recreate it with `make clean`") from exc
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    conn.close()


def stop(datadir: Path) -> None:
    if _running_port(datadir):
        _run([_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(datadir)], "stopping the server")


def embedded_dsn() -> str:
    """The DSN of the embedded server, starting it if it is not running; its password file in the state dir."""
    _refuse_legacy_root_server()
    return start(default_datadir(), passfile=config.private_state_dir() / PASSFILE)


def _refuse_legacy_root_server() -> None:
    """As root, an earlier version put the server in ``<state>/postgres`` when the postgres user could reach the
    state dir, trusting every TCP connection; the state dir is root's alone now, so that server cannot run."""
    legacy = config.state_dir() / "postgres"
    if os.geteuid() != 0 or not (legacy / "PG_VERSION").exists():
        return
    stop(legacy)
    raise DatabaseError(f"the embedded PostgreSQL in {legacy} was made by an earlier version, which let every local "
                        "user connect without a password; it was stopped - recreate it with `make clean` (its "
                        "tables are lost) or set PIPELINE_PG_DSN to a server of your own")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    datadir = Path(argv[1]) if len(argv) > 1 else default_datadir()
    if command in ("start", "dsn"):
        print(start(datadir) if len(argv) > 1 else embedded_dsn())
    elif command == "stop":
        stop(datadir)
    elif command == "remove":  # make clean: stop it and delete its data (as root it lives outside the state dir)
        stop(datadir)
        shutil.rmtree(datadir.parent if ROOT_HOME in datadir.parents else datadir, ignore_errors=True)
    elif command == "status":
        port = _running_port(datadir)
        print(f"running on 127.0.0.1:{port}, socket in {datadir}" if port else f"not running ({datadir})")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
