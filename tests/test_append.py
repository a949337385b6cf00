"""``append`` mode against the real server: a run loads only the files not yet recorded, a run with none does
nothing, a rewritten, removed or drifted file stops the run before anything is loaded, a file still being
written waits, and a kill at any instant of an append, then a rerun, leaves every file in the table once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, assert_clear_failure, assert_table_matches, ingest, ingest_cmd, ok, query, write_awkward

ROWS = 300  # per file
ARROW = ("--export-engine", "arrow")
APPEND = ("--mode", "append")


def recorded(dsn: str) -> list[tuple]:
    """(file, times recorded) per recorded file, and nothing may be recorded twice (the primary key)."""
    return query(dsn, "SELECT name, rows FROM pipeline.published_files WHERE target_table = 't' ORDER BY name")


def assert_holds(dsn: str, source, files: int) -> None:
    assert_table_matches(dsn, "inc", "t", source)
    assert recorded(dsn) == [(f"part {i:03d}.parquet", ROWS) for i in range(files)]
    staging = "SELECT tablename FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'load\\_%'"
    assert query(dsn, staging) == []


def append(env, source, *extra, **kw):
    return ingest(env, source, "inc.t", 2 * ROWS, *APPEND, *extra, **kw)


SPARK = ("--export-engine", "spark", "--export-spark-min-rows", "0")  # Spark even for small increments


@pytest.mark.parametrize("engine", [ARROW, SPARK], ids=["arrow", "spark"])
def test_a_run_appends_only_the_new_files_and_a_run_without_any_does_nothing(env, tmp_path, state_dir, engine):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=4, rows_per_file=ROWS)
    first = ok(append(env, source, *engine))
    assert "4 files · 1,200 rows" in first
    assert_holds(dsn, source, 4)
    write_awkward(source, files=2, rows_per_file=ROWS, first=4)
    second = ok(append(env, source, *engine))
    assert "2 files · 600 rows" in second and "appended 600 rows from 2 files; the table holds 1,800" in second
    assert_holds(dsn, source, 6)
    idle = ok(append(env, source, *engine))
    assert "no new file" in idle and "SparkReadParquet" not in idle and "ExportCsvChunks" not in idle
    assert_holds(dsn, source, 6)
    assert list(state_dir.glob("*/*")) == []  # a run finding nothing new removes the records of published ones


def test_an_increment_below_spark_min_rows_is_exported_without_starting_spark(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(append(env, source, *SPARK))
    write_awkward(source, files=1, rows_per_file=ROWS, first=2)
    out = ok(append(env, source, "--export-engine", "spark", "--export-spark-min-rows", str(ROWS + 1)))
    assert "Starting Spark" not in out and "1 files · 300 rows" in out
    assert_holds(dsn, source, 3)


def test_replace_and_append_take_turns(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=3, rows_per_file=ROWS)
    ok(ingest(env, source, "inc.t", 2 * ROWS, *ARROW))  # replace records the files it loads
    assert_holds(dsn, source, 3)
    write_awkward(source, files=1, rows_per_file=ROWS, first=3)
    assert "1 files · 300 rows" in ok(append(env, source, *ARROW))
    assert_holds(dsn, source, 4)
    write_awkward(source, files=1, rows_per_file=ROWS, first=4)
    ok(ingest(env, source, "inc.t", 2 * ROWS, *ARROW))  # a replace takes the whole folder again
    assert_holds(dsn, source, 5)
    assert "no new file" in ok(append(env, source, *ARROW))


def test_a_rewritten_or_removed_file_stops_the_append_and_a_touched_one_does_not(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=3, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    first = source / "part 000.parquet"
    os.utime(first, ns=(1_000_000_000, 1_000_000_000))  # touched: same bytes, another mtime
    assert "no new file" in ok(append(env, source, *ARROW))
    table = pq.read_table(first)
    pq.write_table(table.slice(0, ROWS - 1), first)  # rewritten: a row fewer
    write_awkward(source, files=1, rows_per_file=ROWS, first=3)
    assert_clear_failure(append(env, source, *ARROW), repr(str(first)), "was rewritten", "--mode replace")
    pq.write_table(table, first)  # put back: its footer is the recorded one again
    (source / "part 001.parquet").unlink()
    assert_clear_failure(append(env, source, *ARROW), "part 001.parquet", "was removed", "--mode replace")
    assert query(dsn, "SELECT count(*) FROM inc.t") == [(3 * ROWS,)]  # nothing was loaded meanwhile
    assert len(recorded(dsn)) == 3


def test_a_file_still_being_written_waits_for_the_next_run(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    write_awkward(tmp_path / "next", files=1, rows_per_file=ROWS, first=2)
    whole = (tmp_path / "next" / "part 002.parquet").read_bytes()
    growing = source / "part 002.parquet"
    growing.write_bytes(whole[: len(whole) // 2])  # the writer has not written the footer yet
    out = ok(append(env, source, *ARROW))
    assert "still being written" in out and "'part 002.parquet'" in out and "no new file" in out
    growing.write_bytes(whole)
    assert "1 files · 300 rows" in ok(append(env, source, *ARROW))
    assert_holds(dsn, source, 3)


def test_a_file_whose_columns_drift_from_the_table_is_refused_before_any_export(env, tmp_path, state_dir):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    table = pq.read_table(source / "part 000.parquet")
    drifted = table.set_column(0, "id", table.column("id").cast(pa.int32()))
    pq.write_table(drifted, source / "part 002.parquet")
    assert_clear_failure(append(env, source, *ARROW), "column 'id' is integer in the new files", "bigint in inc.t",
                         "--mode replace")
    assert not list(state_dir.glob("*/*/chunks*"))
    assert query(dsn, "SELECT count(*) FROM inc.t") == [(2 * ROWS,)]


def test_a_table_dropped_after_an_append_is_loaded_again_from_every_file(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    write_awkward(source, files=1, rows_per_file=ROWS, first=2)
    ok(append(env, source, *ARROW))
    query(dsn, "DROP TABLE inc.t")
    assert "3 files · 900 rows" in ok(append(env, source, *ARROW))
    assert_holds(dsn, source, 3)
    query(dsn, "DROP TABLE inc.t")
    (source / "part 002.parquet").unlink()  # with the table gone, the folder as it is now is the table
    assert "2 files · 600 rows" in ok(append(env, source, *ARROW))
    assert_holds(dsn, source, 2)


def test_a_table_published_before_files_were_recorded_asks_for_one_replace(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(ingest(env, source, "inc.t", 2 * ROWS, *ARROW))
    query(dsn, "DELETE FROM pipeline.published_files")  # as an older version left it
    assert_clear_failure(append(env, source, *ARROW), "inc.t was published before", "--mode replace")


@pytest.mark.parametrize("point", [
    "export.chunk:1", "copy.before_commit:1", "copy.after_commit:1", "verify.done", "publish.after_commit",
])
def test_kill_during_an_append_then_rerun_appends_every_file_once(env, tmp_path, point):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=3, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    write_awkward(source, files=3, rows_per_file=ROWS, first=3)
    killed = append(env, source, *ARROW, "--workers", "2", kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    write_awkward(source, files=1, rows_per_file=ROWS, first=6)  # a file arrives before the rerun
    ok(append(env, source, *ARROW))
    ok(append(env, source, *ARROW))  # a rerun picks up what the first one left for later
    assert_holds(dsn, source, 7)


def test_two_appends_at_once_load_each_file_once(env, tmp_path):
    """The same increment twice (Luigi's pid lock off), and then two increments over the same files (other chunk
    sizes, so other loads): whichever publishes second finds the files recorded and publishes nothing."""
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=ROWS)
    ok(append(env, source, *ARROW))
    for files, chunk_rows in ((2, (ROWS, ROWS)), (4, (ROWS, 3 * ROWS))):
        first = len(recorded(dsn))
        write_awkward(source, files=files, rows_per_file=ROWS, first=first)
        runs = [subprocess.Popen(ingest_cmd(source, "inc.t", rows, *APPEND, *ARROW, "--no-lock"), cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rows in chunk_rows]
        outs = [run.communicate(timeout=300)[0] for run in runs]
        codes = [run.returncode for run in runs]
        assert 0 in codes, outs
        for code, out in zip(codes, outs, strict=True):
            if code:
                assert "another run loaded" in out and "Traceback" not in out, out
        ok(append(env, source, *ARROW))
        assert_holds(dsn, source, first + files)


def test_the_quick_start_appends_the_minutes_make_sample_adds(env, tmp_path):
    """README: `make run`, `make sample MINUTES=7`, `make run` loads only the two new minute files."""
    from pipeline.devtools import sample

    source, config = tmp_path / "data_sample", tmp_path / "config"
    shutil.copytree(REPO / "data_sample", source)
    config.mkdir()
    (config / "tables.toml").write_text((REPO / "config" / "tables.toml").read_text().replace(
        'source = "data_sample"', f'source = "{source}"'))
    assert 'mode = "append"' in (config / "tables.toml").read_text()

    def run() -> str:
        result = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pipeline", "run", "--local-scheduler",
                                 "--export-engine", "arrow", "--pipeline-config-dir", str(config)],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "9,570 rows  loaded now" in run()
    sample.generate(source, minutes=7)
    assert "13,398 rows  3,828 appended now" in run()
    assert_table_matches(env["PIPELINE_PG_DSN"], "product", "product_master", source)
    assert "already up to date" in run()
