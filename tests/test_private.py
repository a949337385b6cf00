"""The embedded default is private to the user who runs it: another local user can neither connect to its
server (TCP asks for a password kept in a 0600 file; the socket lies in a 0700 folder) nor read the state
dir. Real PostgreSQL; the tests run as root, so ``nobody`` is the outsider and a user made here the owner."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
from helpers import REPO, query

from pipeline.postgres import embedded
from pipeline.postgres.passwords import trusts_tcp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to act as other local users")
OWNER = "pipeline-test-owner"


def python_for(user: str) -> tuple[str, dict]:
    """(interpreter, environment) running this suite's packages as ``user``: the suite's own interpreter, or -
    where it lives in a folder only root may enter, as pyenv's under /root - the system's of the same version
    with the suite's site-packages on the path."""
    if subprocess.run(["runuser", "-u", user, "--", "test", "-x", sys.executable]).returncode == 0:
        return sys.executable, {}
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin")
    if system is None:
        pytest.skip(f"no Python {sys.version_info.major}.{sys.version_info.minor} that user {user} may run")
    site = [p for p in sys.path if p.endswith("site-packages")]
    return system, {"PYTHONPATH": ":".join([*site, str(REPO)])}


def run_pipeline(env: dict, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` from the repository, as ``user`` (default: this one)."""
    cmd = [sys.executable, "-m", "pipeline", *args]
    if user:
        python, extra = python_for(user)
        cmd = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in {**env, **extra}.items()], python,
               "-m", "pipeline", *args]
    return subprocess.run(cmd, cwd=REPO, env=None if user else env, capture_output=True, text=True, timeout=600,
                          start_new_session=True)  # a kill point kills its process group, not the suite


def as_outsider(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *cmd], capture_output=True, text=True, timeout=60)


def embedded_env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_PG_DSN", "PGPASSWORD", "PGPASSFILE")}
    return {**env, "PIPELINE_STATE_DIR": str(state)}


def datadir_of(env: dict, user: str | None = None) -> Path:
    probe = "from pipeline.postgres.embedded import default_datadir; print(default_datadir())"
    cmd = [sys.executable, "-c", probe]
    if user:
        cmd = ["runuser", "-u", user, "--", "env", f"PIPELINE_STATE_DIR={env['PIPELINE_STATE_DIR']}", *cmd]
    return Path(subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout.strip())


@pytest.fixture
def embedded_state(tmp_path):
    """A state dir for the embedded default; its server stopped and removed afterwards."""
    state = tmp_path / "state"
    env = embedded_env(state)
    yield env
    datadir = datadir_of(env)
    embedded.stop(datadir)
    shutil.rmtree(datadir.parent, ignore_errors=True)


def _port(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().splitlines()[3])


def assert_outsiders_are_kept_out(state: Path, datadir: Path) -> None:
    port = str(_port(datadir))
    tcp = as_outsider("psql", "-w", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "pipeline", "-c", "select 1")
    assert tcp.returncode != 0 and "password" in tcp.stderr, tcp
    local = as_outsider("psql", "-w", "-h", str(datadir), "-p", port, "-U", "postgres", "-d", "pipeline",
                        "-c", "select 1")
    assert local.returncode != 0 and "Permission denied" in local.stderr, local
    listing = as_outsider("ls", str(state))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr, listing
    passfile = as_outsider("cat", str(state / embedded.PASSFILE))
    assert passfile.returncode != 0, passfile


def assert_private(state: Path) -> None:
    """Every folder under ``state`` 0700, every file 0600."""
    for folder, _, files in os.walk(state):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
        for name in files:
            assert stat.S_IMODE(os.stat(Path(folder) / name).st_mode) == 0o600, Path(folder) / name


def test_the_embedded_server_and_the_state_dir_admit_only_their_user(embedded_state):
    env = embedded_state
    state = Path(env["PIPELINE_STATE_DIR"])
    # `make run` as it is (Spark engine), killed while its chunk files - the table's content - are on disk
    killed = run_pipeline({**env, "PIPELINE_KILL_AT": "copy.after_commit"}, "run", "--local-scheduler")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert list(state.glob("*/*/chunks*/chunk-*/part-*"))
    assert_private(state)
    datadir = datadir_of(env)
    assert_outsiders_are_kept_out(state, datadir)
    result = run_pipeline(env, "run", "--local-scheduler")
    assert result.returncode == 0, result.stdout + result.stderr
    secret = (state / embedded.PASSFILE).read_text().split(":")[-1].strip()
    assert "9,570 rows" in result.stdout and secret not in result.stdout + result.stderr
    assert_private(state)
    assert_outsiders_are_kept_out(state, datadir)
    # its own user (root here) connects with the DSN, which names the password's file, not the password
    dsn = embedded.dsn_for(_port(datadir), state / embedded.PASSFILE)
    assert query(dsn, "SELECT count(*) FROM product.product_master") == [(9570,)]
    assert "passfile=" in dsn and secret not in dsn


@pytest.fixture
def owner(tmp_path):
    """An ordinary local user, with a folder of its own for the state dir; removed afterwards."""
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OWNER], check=False)
    home = Path(tempfile.mkdtemp(prefix="pipeline-owner-", dir="/tmp"))
    uid = pwd.getpwnam(OWNER)
    os.chown(home, uid.pw_uid, uid.pw_gid)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PIPELINE_STATE_DIR": str(home / "state")}
    yield env
    python, extra = python_for(OWNER)
    subprocess.run(["runuser", "-u", OWNER, "--", "env", *[f"{k}={v}" for k, v in {**env, **extra}.items()], python,
                    "-m", "pipeline.postgres.embedded", "stop"], cwd=REPO, capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(["userdel", OWNER], check=False)


def test_an_ordinary_user_loads_with_the_embedded_default_and_a_rerun_does_nothing(owner):
    first = run_pipeline(owner, "run", "--local-scheduler", "--export-engine", "arrow", user=OWNER)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "9,570 rows" in first.stdout and "loaded now" in first.stdout
    again = run_pipeline(owner, "run", "--local-scheduler", "--export-engine", "arrow", user=OWNER)
    assert again.returncode == 0 and "already up to date" in again.stdout, again.stdout + again.stderr
    state = Path(owner["PIPELINE_STATE_DIR"])
    datadir = state / "postgres"
    assert datadir.is_dir() and datadir.stat().st_uid == pwd.getpwnam(OWNER).pw_uid
    assert_outsiders_are_kept_out(state, datadir)


def test_a_wider_state_dir_is_tightened_with_a_warning_naming_it(env, state_dir):
    state_dir.chmod(0o755)
    result = run_pipeline(env, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(state_dir) in result.stderr and "0700" in result.stderr, result.stderr
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_a_server_the_previous_version_made_is_migrated_to_passwords(embedded_state, previous):
    env = embedded_state
    state = Path(env["PIPELINE_STATE_DIR"])
    old = subprocess.run([sys.executable, "-P", "-m", "pipeline.localpg", "start"], cwd=REPO,
                         env={**env, "PYTHONPATH": str(previous)}, capture_output=True, text=True, timeout=120)
    assert old.returncode == 0, old.stderr
    datadir = datadir_of(env)
    assert trusts_tcp(datadir)
    open_door = as_outsider("psql", "-w", "-h", "127.0.0.1", "-p", str(_port(datadir)), "-U", "postgres", "-d",
                            "pipeline", "-c", "select 1")
    assert open_door.returncode == 0, open_door  # the hole this version closes
    result = run_pipeline(env, "run", "--local-scheduler", "--export-engine", "arrow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "made by an earlier version" in result.stderr and str(datadir) in result.stderr
    assert not trusts_tcp(datadir)
    assert_outsiders_are_kept_out(state, datadir)
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host="127.0.0.1", port=_port(datadir), user="postgres", dbname="pipeline")


def test_a_server_in_a_folder_of_the_callers_leaves_that_folder_and_its_parents_as_they_were():
    outer = Path(tempfile.mkdtemp(prefix="pipeline-test-outer-"))  # the postgres user must pass through it
    base = outer / "base"
    base.mkdir()
    outer.chmod(0o755)
    base.chmod(0o755)
    before = [(p.stat().st_mode, p.stat().st_uid) for p in (outer, base)]
    embedded.start(base / "data", durable=False)
    try:
        assert [(p.stat().st_mode, p.stat().st_uid) for p in (outer, base)] == before
        assert stat.S_IMODE((base / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((base / embedded.PASSFILE).stat().st_mode) == 0o600
    finally:
        embedded.stop(base / "data")
        shutil.rmtree(outer, ignore_errors=True)
