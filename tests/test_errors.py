"""Bad input and an unreachable database: one clear sentence, a non-zero exit, no traceback, no table."""

from __future__ import annotations

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, ingest, table_exists

from pipeline import sample


def assert_clear_failure(result, *phrases: str) -> None:
    assert result.returncode not in (0, -9), result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stdout
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def test_missing_folder(env, tmp_path):
    result = ingest(env, tmp_path / "nowhere", "bad.t", 1000)
    assert_clear_failure(result, "nowhere", "does not exist")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


def test_empty_folder(env, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    result = ingest(env, tmp_path / "empty", "bad.t", 1000)
    assert_clear_failure(result, "empty", "holds no Parquet files")


def test_non_parquet_file(env, tmp_path):
    source = tmp_path / "src"
    sample.generate(source, minutes=1)
    (source / "notes.txt").write_text("not parquet at all\n")
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, "notes.txt", "is not a readable Parquet file")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


def test_files_with_different_schemas(env, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "name": ["a", "b"]}), source / "a.parquet")
    pq.write_table(pa.table({"id": [3], "label": ["c"]}), source / "b.parquet")
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, "different schemas", "'b.parquet' has column 'label' string", "'name' string")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


def test_unsupported_type_is_refused_before_any_row(env, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"id": [1], "ns": pa.array([1], pa.timestamp("ns"))}), source / "a.parquet")
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, "'ns'", "nanosecond")


@pytest.mark.parametrize("dsn, phrase", [
    ("postgresql://someone:s3cret-pw@127.0.0.1:1/nodb", "cannot connect to PostgreSQL at 127.0.0.1:1/nodb"),
])
def test_unreachable_database_names_it_without_the_password(env, dsn, phrase):
    result = ingest({**env, "PIPELINE_PG_DSN": dsn}, REPO / "data_sample", "bad.t", 1000)
    assert_clear_failure(result, phrase)
    assert "s3cret-pw" not in result.stdout


def test_missing_database(env):
    params = psycopg2.extensions.parse_dsn(env["PIPELINE_PG_DSN"])
    dsn = psycopg2.extensions.make_dsn(**{**params, "dbname": "no_such_database"})
    result = ingest({**env, "PIPELINE_PG_DSN": dsn}, REPO / "data_sample", "bad.t", 1000)
    assert_clear_failure(result, "no_such_database", "does not exist")


def test_unknown_table_without_source(env):
    from helpers import run_luigi

    result = run_luigi(env, "IngestTable", "--table", "nowhere.unknown")
    assert_clear_failure(result, "nowhere.unknown is not declared in config/")
