"""kill -9 at many instants of a load, then a rerun: exactly the source rows, every chunk once."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psycopg2
import pytest
from helpers import REPO, assert_table_matches, ingest, ingest_cmd, ok, query, write_awkward

CHUNKS = 4


@pytest.fixture
def awkward_source(tmp_path):
    source = tmp_path / "src"
    write_awkward(source, files=CHUNKS, rows_per_file=300)
    return source


def assert_loaded_once(dsn: str, source) -> None:
    assert_table_matches(dsn, "crash", "t", source)
    assert query(dsn, "SELECT count(*), count(DISTINCT chunk), sum(rows) FROM pipeline.chunk_ledger") == [
        (CHUNKS, CHUNKS, CHUNKS * 300)]
    leftovers = query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'pipeline' "
                           "AND tablename LIKE 'load\\_%'")
    assert leftovers == []


@pytest.mark.parametrize("point", [
    "export.chunk:2",          # Spark has written some chunks, the chunk set is not published
    "copy.before_commit:2",    # inside the second chunk's transaction, COPY done, not committed
    "copy.after_commit:2",     # second chunk committed with its ledger row, checkpoint not written
    "copy.done:1",             # between two chunk copies
    "verify.done",             # verified, not yet published
    "publish.after_commit",    # published, Luigi never heard of it
])
def test_kill_then_rerun_loads_exactly_once(env, awkward_source, point):
    killed = ingest(env, awkward_source, "crash.t", 300, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    rerun = ok(ingest(env, awkward_source, "crash.t", 300))
    if point == "copy.after_commit:2":
        assert "chunk 2/4 · 300 rows" in rerun and "already in the ledger" in rerun
    assert_loaded_once(env["PIPELINE_PG_DSN"], awkward_source)


@pytest.mark.parametrize("point, rerun_engine", [
    ("export.chunk:2", "arrow"),
    ("copy.after_commit:2", "arrow"),
    ("copy.after_commit:3", "spark"),  # the other engine finishes the load: same chunks, same ledger
    ("verify.done", "arrow"),
])
def test_arrow_engine_kill_then_rerun_loads_exactly_once(env, awkward_source, point, rerun_engine):
    engine = ("--export-engine", "arrow")
    killed = ingest(env, awkward_source, "crash.t", 300, *engine, "--workers", "2", kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    rerun = ok(ingest(env, awkward_source, "crash.t", 300, "--export-engine", rerun_engine))
    if point.startswith("copy.after_commit"):
        assert "already in the ledger" in rerun and "not loading it again" in rerun
    assert_loaded_once(env["PIPELINE_PG_DSN"], awkward_source)


def test_kill_from_outside_while_spark_exports(env, awkward_source, state_dir):
    cmd = ingest_cmd(awkward_source, "crash.t", 300)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(state_dir.glob("*/*/chunks.tmp-*/chunk-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "export never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    ok(ingest(env, awkward_source, "crash.t", 300))
    assert_loaded_once(env["PIPELINE_PG_DSN"], awkward_source)
    assert not list(state_dir.glob("*/*/chunks.tmp-*"))


def test_postgres_restart_while_chunks_copy(tmp_path, state_dir, own_server):
    """A server restart mid-load: transient failures are retried and the load completes exactly once."""
    from pipeline.postgres import embedded as localpg

    dsn, datadir = own_server
    source = tmp_path / "src"
    write_awkward(source, files=30, rows_per_file=50)
    env = {**os.environ, "PIPELINE_PG_DSN": dsn, "PIPELINE_STATE_DIR": str(state_dir)}
    cmd = ingest_cmd(source, "crash.t", 50, "--postgres-retry-delay-s", "0.5")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(state_dir.glob("*/*/copied/*.json"))) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "copying never started"
        time.sleep(0.02)
    localpg.stop(datadir)
    time.sleep(1)
    localpg.start(datadir, port=int(psycopg2.extensions.parse_dsn(dsn)["port"]), durable=False)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-5000:]
    assert "retrying in" in out
    assert_table_matches(dsn, "crash", "t", source)
    assert query(dsn, "SELECT count(*), count(DISTINCT chunk) FROM pipeline.chunk_ledger") == [(30, 30)]


def test_two_runs_of_the_same_load_at_once(env, awkward_source):
    """Two `luigi --local-scheduler` processes on one load: the ledger, not luck, keeps every chunk single.

    (--no-lock: by default Luigi's own pid lock stops the second identical command at once.)"""
    cmd = ingest_cmd(awkward_source, "crash.t", 300, "--no-lock")
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert_loaded_once(env["PIPELINE_PG_DSN"], awkward_source)
    said = "".join(outputs)
    assert ("already loaded by another process" in said or "already in the ledger" in said
            or "already published by another process" in said)
