"""Bad input and an unreachable database: one clear sentence, a non-zero exit, no traceback, no table."""

from __future__ import annotations

import os
import subprocess

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, assert_clear_failure, ingest, table_exists

from pipeline.devtools import sample


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


def test_nul_byte_in_text_is_refused_naming_column_and_chunk(env, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "body": ["fine", "bad\x00byte"]}), source / "a.parquet")
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, "column 'body'", "with a NUL byte", "chunk 0", "'a.parquet'")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


@pytest.mark.parametrize("engine", ["spark", "arrow"])
def test_a_value_postgres_rejects_names_the_source_file(env, tmp_path, engine):
    """Text that is not UTF-8 (pyarrow and Spark pass the bytes through; COPY refuses them)."""
    source = tmp_path / "src"
    source.mkdir()
    raw = pa.array([b"fine", b"bad\xff\xfe"], pa.binary())
    text = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # a string column, unvalidated
    pq.write_table(pa.table({"id": [1, 2], "body": text}), source / "a.parquet")
    result = ingest(env, source, "bad.t", 1000, "--export-engine", engine)
    assert_clear_failure(result, "chunk 0", "(source 'a.parquet')", "invalid byte sequence")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


@pytest.mark.parametrize("engine, chunk_format", [("spark", "csv"), ("arrow", "csv"), ("arrow", "binary")])
def test_dates_before_postgres_first_day_are_refused_naming_column_and_chunk(env, tmp_path, engine, chunk_format):
    source = tmp_path / "src"
    source.mkdir()
    before = -2_440_588 - 1  # days from 1970-01-01 back to 4714-11-23 BC, the day before Julian day 0
    # and the least timestamp Arrow holds, which the binary format's 2000-based microseconds cannot
    lowest = pa.array([0, -2**63], pa.timestamp("us"))
    pq.write_table(pa.table({"id": [1, 2], "day": pa.array([0, before], pa.date32()), "at": lowest}),
                   source / "a.parquet")
    result = ingest(env, source, "bad.t", 1000, "--export-engine", engine, "--export-chunk-format", chunk_format)
    assert_clear_failure(result, "column 'day'", "outside PostgreSQL's range", "chunk 0", "'a.parquet'")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


def test_schema_without_create_right_fails_before_export(env, db, tmp_path):
    from helpers import query

    query(db, "CREATE ROLE limited LOGIN PASSWORD 'limited-pw'; CREATE SCHEMA locked; CREATE SCHEMA pipeline; "
              "GRANT ALL ON SCHEMA pipeline TO limited; GRANT USAGE ON SCHEMA locked TO limited")
    params = dict(p.split("=", 1) for p in db.split())
    dsn = f"postgresql://limited:limited-pw@{params['host']}:{params['port']}/{params['dbname']}"
    result = ingest({**env, "PIPELINE_PG_DSN": dsn}, REPO / "data_sample", "locked.t", 1000)
    assert_clear_failure(result, "role limited may not create tables in schema 'locked'")
    assert "Starting Spark" not in result.stdout


def test_wrong_password(env, own_server):
    from helpers import query

    dsn, datadir = own_server
    query(dsn, "CREATE ROLE pw LOGIN PASSWORD 'right-one'")
    hba = datadir / "pg_hba.conf"
    hba.write_text("host all pw 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    query(dsn, "SELECT pg_reload_conf()")
    wrong = dsn.replace("postgres@", "pw:wrong-one@")
    result = ingest({**env, "PIPELINE_PG_DSN": wrong}, REPO / "data_sample", "bad.t", 1000)
    assert_clear_failure(result, "password authentication failed for user \"pw\"")
    assert "wrong-one" not in result.stdout


@pytest.mark.parametrize("text, phrase", [
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nchunk_rows = "big"\n', "'chunk_rows' must be a int"),
    ('[[tables]]\ntable = "a.b"\n', "missing 'source'"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nsorce = "y"\n', "unknown key 'sorce'"),
    ("[[tables]\n", "is not valid TOML"),
    ('[[tables]]\ntable = "nodot"\nsource = "x"\n', "must name a schema and a table"),
])
def test_malformed_config_entry(env, tmp_path, text, phrase):
    from helpers import run_luigi

    config = tmp_path / "config"
    config.mkdir()
    (config / "bad.toml").write_text(text)
    result = run_luigi(env, "IngestAll", "--pipeline-config-dir", str(config))
    assert_clear_failure(result, phrase)


def test_unwritable_state_directory_is_named(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = ingest({**env, "PIPELINE_STATE_DIR": str(blocker / "state")}, REPO / "data_sample", "bad.t", 1000)
    assert_clear_failure(result, "cannot write", str(blocker))


def test_truncated_parquet_file(env, tmp_path):
    source = tmp_path / "src"
    sample.generate(source, minutes=2)
    victim = source / sample.file_name(1)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, sample.file_name(1), "is not a readable Parquet file")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


def write_encrypted(path, plaintext_footer: bool) -> None:
    """A file with Parquet modular encryption (column 'secret' under its own key), keys from a toy KMS."""
    import base64

    import pyarrow.parquet.encryption as pe

    class ToyKms(pe.KmsClient):
        def __init__(self, _config):
            super().__init__()

        def wrap_key(self, key, _master):
            return base64.b64encode(key)

        def unwrap_key(self, wrapped, _master):
            return base64.b64decode(wrapped)

    config = pe.EncryptionConfiguration(footer_key="footer", column_keys={"columns": ["secret"]},
                                        plaintext_footer=plaintext_footer, double_wrapping=False)
    properties = pe.CryptoFactory(ToyKms).file_encryption_properties(pe.KmsConnectionConfig(), config)
    table = pa.table({"id": [1, 2], "secret": ["a", "b"]})
    with pq.ParquetWriter(path, table.schema, encryption_properties=properties) as writer:
        writer.write_table(table)


@pytest.mark.parametrize("plaintext_footer, phrase", [(False, "is encrypted"), (True, "has encrypted columns")])
def test_encrypted_files_are_refused_before_any_row_is_written(env, tmp_path, plaintext_footer, phrase):
    source = tmp_path / "src"
    sample.generate(source, minutes=1)
    victim = source / "zz-encrypted.parquet"
    write_encrypted(victim, plaintext_footer)
    result = ingest(env, source, "bad.t", 1000)
    assert_clear_failure(result, f"file '{victim}' {phrase} (Parquet modular encryption",
                         "the pipeline reads only unencrypted Parquet")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs: too small for the sample's chunk files."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (or is not allowed here)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_names_the_file_and_the_rerun_completes(env, tiny_disk):
    from helpers import assert_table_matches, ok

    env = {**env, "PIPELINE_STATE_DIR": str(tiny_disk / "state")}
    result = ingest(env, REPO / "data_sample", "full.t", 5000, "--export-engine", "arrow")
    assert_clear_failure(result, f"cannot write '{tiny_disk}/state/", "No space left on device", "free some space")
    assert not table_exists(env["PIPELINE_PG_DSN"], "full", "t")
    subprocess.run(["mount", "-o", "remount,size=64M", str(tiny_disk)], check=True)
    ok(ingest(env, REPO / "data_sample", "full.t", 5000, "--export-engine", "arrow"))
    assert_table_matches(env["PIPELINE_PG_DSN"], "full", "t", REPO / "data_sample")
