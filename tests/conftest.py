"""Fixtures: a real, throwaway PostgreSQL server for the session and a fresh database per test.

``PIPELINE_TEST_DSN`` (a libpq URI with rights to CREATE DATABASE) points the suite at an
existing server instead of starting one from the machine's PostgreSQL binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

from pipeline.postgres import embedded as localpg

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def throwaway_server():
    """A PostgreSQL server of its own in a temporary folder the server's OS user can reach."""
    base = Path(tempfile.mkdtemp(prefix="pipeline-test-pg-"))
    base.chmod(0o755)
    datadir = base / "data"
    try:
        yield localpg.start(datadir, durable=False), datadir
    finally:
        localpg.stop(datadir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_dsn():
    if os.environ.get("PIPELINE_TEST_DSN"):
        yield os.environ["PIPELINE_TEST_DSN"]
        return
    with throwaway_server() as (dsn, _):
        yield dsn


@pytest.fixture
def own_server():
    """(dsn, datadir) of a server for this test alone, e.g. to restart it."""
    with throwaway_server() as server:
        yield server


@pytest.fixture
def db(pg_admin_dsn):
    """A DSN of a new, empty database; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(pg_admin_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    params = psycopg2.extensions.parse_dsn(pg_admin_dsn)
    params["dbname"] = name
    dsn = psycopg2.extensions.make_dsn(**params)
    try:
        yield dsn
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def env(db, state_dir):
    """Environment for running the pipeline against the test database."""
    return {**os.environ, "PIPELINE_PG_DSN": db, "PIPELINE_STATE_DIR": str(state_dir)}


@pytest.fixture
def luigid(tmp_path):
    """A real luigid on a free loopback port; yields its port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "luigid"
    folder.mkdir()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("luigid")), "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(folder / "state.pickle"), "--logdir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data={{}}", timeout=1)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "luigid did not start"
            time.sleep(0.2)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# The last commit of the flat layout (and of the embedded server trusting TCP): the state it leaves is taken over.
PREVIOUS = "67e5fbc"
# The last commit whose loads carried their mode, key and options as task parameters and plan fields of their own.
SEPARATE_OPTIONS = "a18be58"


def _package_at(commit: str, tmp_path_factory) -> Path:
    """The package as ``commit`` had it, from the repository's history."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO).returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone's history (a shallow clone?)")
    folder = tmp_path_factory.mktemp(f"at-{commit}")
    archive = subprocess.run(["git", "archive", commit, "pipeline"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


@pytest.fixture(scope="session")
def previous(tmp_path_factory):
    """The flat layout's package (``PREVIOUS``)."""
    return _package_at(PREVIOUS, tmp_path_factory)


@pytest.fixture(scope="session")
def separate_options(tmp_path_factory):
    """The package before ``LoadOptions`` (``SEPARATE_OPTIONS``)."""
    return _package_at(SEPARATE_OPTIONS, tmp_path_factory)
