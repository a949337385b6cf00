"""End to end through the real CLI, real Spark and a real PostgreSQL: exact content, reruns, replacement."""

from __future__ import annotations

import shutil
import subprocess

from helpers import (
    REPO,
    assert_table_matches,
    ingest,
    ok,
    query,
    run_luigi,
    table_exists,
    write_awkward,
)

from pipeline.devtools import sample


def test_make_run_loads_the_sample_and_prints_a_summary(env):
    """`make run`'s command: IngestAll over config/ loads data_sample/ into product.product_master."""
    result = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pipeline", "run", "--local-scheduler"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "product.product_master" in result.stdout
    assert "rows/s" in result.stdout
    assert_table_matches(env["PIPELINE_PG_DSN"], "product", "product_master", REPO / "data_sample")


def test_run_passes_luigi_options_through(env):
    """`python -m pipeline run --export-engine arrow`: the option reaches the tasks, as under `luigi`."""
    result = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pipeline", "run", "--local-scheduler",
                             "--export-engine", "arrow"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Starting Spark" not in result.stdout + result.stderr
    assert_table_matches(env["PIPELINE_PG_DSN"], "product", "product_master", REPO / "data_sample")


def test_awkward_strings_and_microseconds_load_exactly_in_parallel(env, tmp_path):
    source = tmp_path / "awkward"
    write_awkward(source, files=4, rows_per_file=500)
    ok(ingest(env, source, "Odd.Awkward", 700, "--workers", "2"))
    assert_table_matches(env["PIPELINE_PG_DSN"], "odd", "awkward", source)
    ledger = query(env["PIPELINE_PG_DSN"], "SELECT count(*), sum(rows) FROM pipeline.chunk_ledger")
    assert ledger == [(4, 2000)]  # 500-row files packed into chunks of at most 700 rows: one file each


def test_arrow_engine_copies_each_chunk_as_soon_as_it_is_exported(env, tmp_path):
    source = tmp_path / "awkward"
    write_awkward(source, files=4, rows_per_file=500)
    out = ok(ingest(env, source, "arrow.awkward", 500, "--export-engine", "arrow", "--workers", "2"))
    assert "Starting Spark" not in out
    assert "4 copied during the export" in out and "counts and checksums match" in out
    assert out.count("already in the ledger (copied during the export") == 4  # each copy task found it done
    assert_table_matches(env["PIPELINE_PG_DSN"], "arrow", "awkward", source)
    ledger = query(env["PIPELINE_PG_DSN"], "SELECT count(*), count(DISTINCT chunk), sum(rows) "
                                           "FROM pipeline.chunk_ledger")
    assert ledger == [(4, 4, 2000)]
    # autovacuum is off on a staging table while it loads, and back on once published
    assert query(env["PIPELINE_PG_DSN"], "SELECT reloptions FROM pg_class WHERE oid = 'arrow.awkward'::regclass") == [
        (None,)]


def test_rerun_of_a_finished_load_runs_nothing(env, tmp_path):
    source = tmp_path / "src"
    sample.generate(source, minutes=2)
    ok(ingest(env, source, "product.rerun", 2000))
    again = ok(ingest(env, source, "product.rerun", 2000))
    assert "Did not run any tasks" in again
    assert "Starting Spark" not in again
    assert_table_matches(env["PIPELINE_PG_DSN"], "product", "rerun", source)


def test_changed_source_replaces_the_table(env, tmp_path, state_dir):
    dsn = env["PIPELINE_PG_DSN"]
    source = tmp_path / "src"
    sample.generate(source, minutes=2)
    ok(ingest(env, source, "product.changing", 2000))
    sample.generate(source, minutes=1, first=2)  # a file added
    ok(ingest(env, source, "product.changing", 2000))
    assert_table_matches(dsn, "product", "changing", source)
    (source / sample.file_name(0)).unlink()  # a file removed
    ok(ingest(env, source, "product.changing", 2000))
    assert_table_matches(dsn, "product", "changing", source)
    assert query(dsn, "SELECT count(*) FROM pipeline.loads") == [(1,)]
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'load\\_%'") \
        == [(0,)]
    load_dirs = [p for p in state_dir.iterdir() if p.name.startswith("product.changing")]
    assert len(load_dirs) == 1 and len(list(load_dirs[0].iterdir())) == 1


def test_failed_verification_publishes_nothing(env, tmp_path):
    dsn = env["PIPELINE_PG_DSN"]
    source = tmp_path / "src"
    sample.generate(source, minutes=2)
    ok(ingest(env, source, "product.checked", 2000))
    sample.generate(source, minutes=1, first=2)
    # Stop after every chunk is copied, tamper with the staging table, then let verification run.
    killed = ingest(env, source, "product.checked", 2000, kill_at="copy.done:3")
    assert killed.returncode == -9
    (staging,) = query(dsn, "SELECT load_id FROM pipeline.loads WHERE published_at IS NULL")[0]
    query(dsn, f"DELETE FROM pipeline.load_{staging} WHERE ctid IN (SELECT ctid FROM pipeline.load_{staging} "
               "LIMIT 1)")
    failed = ingest(env, source, "product.checked", 2000)
    assert failed.returncode != 0
    assert "does not verify: the source has 5,742 rows, the chunk manifest 5,742, PostgreSQL 5,741" in failed.stdout
    assert "Traceback" not in failed.stdout
    (source / sample.file_name(2)).rename(tmp_path / "aside.parquet")
    assert_table_matches(dsn, "product", "checked", source)  # still the first load's rows


def test_ingest_all_loads_every_configured_table(env, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    first, second = tmp_path / "one", tmp_path / "two"
    sample.generate(first, minutes=1)
    write_awkward(second, files=2, rows_per_file=50)
    (config / "a.toml").write_text(f'[[tables]]\ntable = "one.t"\nsource = "{first}"\n')
    (config / "b.toml").write_text(f'[[tables]]\ntable = "two.t"\nsource = "{second}"\nchunk_rows = 60\n')
    ok(run_luigi(env, "IngestAll", "--pipeline-config-dir", str(config)))
    assert_table_matches(env["PIPELINE_PG_DSN"], "one", "t", first)
    assert_table_matches(env["PIPELINE_PG_DSN"], "two", "t", second)
    assert not table_exists(env["PIPELINE_PG_DSN"], "product", "product_master")
    shutil.rmtree(second)



def test_a_dropped_table_is_loaded_again(env, tmp_path):
    source = tmp_path / "src"
    sample.generate(source, minutes=1)
    ok(ingest(env, source, "product.dropped", 2000))
    query(env["PIPELINE_PG_DSN"], "DROP TABLE product.dropped")
    ok(ingest(env, source, "product.dropped", 2000))
    assert_table_matches(env["PIPELINE_PG_DSN"], "product", "dropped", source)
