"""An embedded PostgreSQL server: the default target when no database is configured.

It lives under the state directory (``<state>/postgres``), listens on 127.0.0.1 only, and
is started on first use by whichever process needs it (a file lock keeps that to one).
The test suite uses the same code for its throwaway servers. When run as root, the server
runs as the ``postgres`` OS user, because ``initdb`` refuses root.

    python -m pipeline.postgres.embedded start|stop|status|dsn [DATADIR]
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from .. import config
from ..errors import DatabaseError

DATABASE = "pipeline"
FIRST_PORT = 54329


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


def default_datadir() -> Path:
    """``<state>/postgres``; as root, a folder the postgres user can reach if the state dir is not."""
    datadir = config.state_dir() / "postgres"
    if os.geteuid() == 0 and not _reachable_by_server_user(datadir.parent):
        digest = hashlib.sha256(str(datadir).encode()).hexdigest()[:10]
        datadir = Path("/var/tmp/parquet-pg-pipeline") / digest / "postgres"
    return datadir


def _reachable_by_server_user(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(_as_server_user() + ["test", "-x", str(folder)]).returncode == 0


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


def dsn_for(port: int, database: str = DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def start(datadir: Path, port: int | None = None, durable: bool = True) -> str:
    """Start (initialising if needed) the server in ``datadir``; return its DSN. Idempotent."""
    datadir = datadir.resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    with open(datadir.parent / f".{datadir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = _running_port(datadir)
        if running:
            return dsn_for(running)
        if not (datadir / "PG_VERSION").exists():
            datadir.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(datadir, pw.pw_uid, pw.pw_gid)
            _run([_bin("initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-instructions"], "initdb")
        port = port or _free_port(FIRST_PORT)
        options = [f"-c listen_addresses=127.0.0.1 -p {port} -k {datadir}",
                   "-c max_wal_size=4GB -c shared_buffers=256MB -c max_connections=50"]
        if not durable:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run([_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(datadir), "-l", str(datadir / "server.log"),
              "-o", " ".join(options)], f"starting the server in {datadir} (see its server.log)")
        _create_database(port)
        return dsn_for(port)


def _create_database(port: int) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn_for(port, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DATABASE}")
    conn.close()


def stop(datadir: Path) -> None:
    if _running_port(datadir):
        _run([_bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(datadir)], "stopping the server")


def embedded_dsn() -> str:
    """The DSN of the embedded server, starting it if it is not running."""
    return start(default_datadir())


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    datadir = Path(argv[1]) if len(argv) > 1 else default_datadir()
    if command in ("start", "dsn"):
        print(start(datadir))
    elif command == "stop":
        stop(datadir)
    elif command == "status":
        port = _running_port(datadir)
        print(f"running: {dsn_for(port)}" if port else f"not running ({datadir})")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
