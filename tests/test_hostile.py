"""Hostile names are quoted everywhere and round-trip; a DSN's password never leaves the process."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from helpers import REPO, assert_table_matches, ingest, ok, query

HOSTILE_COLUMNS = ["Upper Case", 'quote"d', "semi;colon; DROP TABLE x; --", "select", "näme ünïcode",
                   "c" * 63, "a.b", "`back`tick`", "A", "a"]


def test_hostile_table_schema_and_column_names_round_trip(env, tmp_path):
    source = tmp_path / "hostile src; 'x'"
    source.mkdir()
    table = pa.table({name: pa.array([f"{name}-{i}" if i % 3 else None for i in range(20)])
                      for name in HOSTILE_COLUMNS})
    pq.write_table(table, source / "we[ir]d {name} *.parquet")
    schema, name = 'Schema; DROP SCHEMA public --', 'Täble "select" ' + "t" * 40
    qualified = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
    ok(ingest(env, source, qualified, 7))
    assert_table_matches(env["PIPELINE_PG_DSN"], schema, name, source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'") == [(1,)]
    again = ok(ingest(env, source, qualified, 7))
    assert "Did not run any tasks" in again


def test_too_long_column_name_is_refused(env, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"x" * 64: [1]}), source / "a.parquet")
    result = ingest(env, source, "bad.t", 10)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    assert "cannot be a PostgreSQL column name" in result.stdout


def test_password_never_appears_in_output_state_or_task_ids(env, tmp_path, state_dir, db):
    secret = "Sup3r-Secret-Pw"
    query(db, f"CREATE ROLE sneaky LOGIN SUPERUSER PASSWORD '{secret}'")
    params = dict(p.split("=", 1) for p in db.split())
    dsn = f"postgresql://sneaky:{secret}@{params['host']}:{params['port']}/{params['dbname']}"
    secret_env = {**env, "PIPELINE_PG_DSN": dsn}
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"v": ["x", "y"]}), source / "a.parquet")
    outputs = [ok(ingest(secret_env, source, "sec.t", 1)),
               ingest(secret_env, tmp_path / "missing", "sec.u", 1).stdout,
               ingest({**secret_env, "PIPELINE_PG_DSN": dsn.replace(params["port"], "1")}, source, "sec.t", 1).stdout,
               subprocess.run([sys.executable, "-m", "pipeline", "status"], cwd=REPO, env=secret_env,
                              capture_output=True, text=True).stdout]
    assert "cannot connect to PostgreSQL at" in outputs[2]
    for text in outputs:
        assert secret not in text
    for path in state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
