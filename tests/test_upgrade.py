"""A state left by earlier versions is taken over as it is: a load the flat layout (before the sub-packages)
finished runs nothing, and one it left half done resumes exactly; so does a load of every write mode, with its
options, that the last version before ``LoadOptions`` left half done (its plan's fields, its task parameters)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, assert_table_matches, ingest, ok, query, write_awkward
from test_merge import expected, write_keyed
from test_options import declare, with_file_names


def test_a_load_the_previous_version_finished_runs_nothing(env, tmp_path, previous):
    source = tmp_path / "src"
    write_awkward(source, files=3, rows_per_file=300)
    old = ok(ingest({**env, "PYTHONPATH": str(previous)}, source, "up.finished", 400))
    assert str(previous) in _package_path({**env, "PYTHONPATH": str(previous)})
    published = query(env["PIPELINE_PG_DSN"], "SELECT load_id, rows FROM pipeline.published")
    assert "Scheduled" in old and published[0][1] == 900
    again = ok(ingest(env, source, "up.finished", 400))
    assert "Did not run any tasks" in again and "Starting Spark" not in again
    assert query(env["PIPELINE_PG_DSN"], "SELECT load_id, rows FROM pipeline.published") == published
    assert_table_matches(env["PIPELINE_PG_DSN"], "up", "finished", source)


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_a_load_the_previous_version_left_half_done_resumes_exactly(env, tmp_path, previous, engine):
    source = _every_statistic(tmp_path / "src", files=4, rows_per_file=250)
    killed = ingest({**env, "PYTHONPATH": str(previous)}, source, "up.half", 250, "--export-engine", engine,
                    "--export-copy-during-export", "false", kill_at="copy.after_commit:2")
    assert killed.returncode == -9, killed.stdout
    ledger = query(env["PIPELINE_PG_DSN"], "SELECT count(*) FROM pipeline.chunk_ledger")
    assert ledger == [(2,)]
    ok(ingest(env, source, "up.half", 250, "--export-engine", engine))
    assert_table_matches(env["PIPELINE_PG_DSN"], "up", "half", source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT count(*), sum(rows) FROM pipeline.chunk_ledger") == [(4, 1000)]


def _package_path(env: dict) -> str:
    """Where ``import pipeline`` finds the package under ``env``, as the ``luigi`` command imports it (no working
    directory on the path: -P)."""
    return subprocess.run([sys.executable, "-P", "-c", "import pipeline; print(pipeline.__file__)"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True).stdout


def _every_statistic(folder, files: int, rows_per_file: int):
    """Files with a column of each kind the statistics treat apart: floats (NaN, NULL), dates, text, lists."""
    folder.mkdir()
    for f in range(files):
        ids = range(f * rows_per_file, (f + 1) * rows_per_file)
        pq.write_table(pa.table({
            "id": pa.array(ids, pa.int64()),
            "x": pa.array([math.nan if i % 13 == 0 else None if i % 7 == 0 else i / 3 for i in ids], pa.float64()),
            "y": pa.array([float(-i) for i in ids], pa.float32()),
            "day": pa.array([dt.date(1, 1, 1) + dt.timedelta(days=i * 997) for i in ids], pa.date32()),
            "name": pa.array([None if i % 5 == 0 else f'n"{i}' for i in ids], pa.string()),
            "tags": pa.array([[i, None] if i % 3 else [] for i in ids], pa.list_(pa.int32())),
        }), folder / f"part-{f}.parquet")
    return folder


# Per mode: the options config/ declares (each one the load's id and plan carry), the run's arguments (with
# --source, config/ gives the table's options only) and where the earlier version is killed
OPTIONS = {
    "replace": ({"max_bad_rows": 5, "indexes": [["id"]]}, (), "verify.done"),
    "append": ({"source_file_column": "source_file", "max_bad_fraction": 0.01}, ("--mode", "append"),
               "copy.after_commit:2"),
    "merge": ({"key": ["id", "day"], "dedup": "last", "max_bad_rows": 3, "indexes": [["day"]]},
              ("--mode", "merge", "--key", "id,day"), "verify.done"),
}


@pytest.mark.parametrize("mode", OPTIONS)
def test_a_load_with_options_the_version_before_left_half_done_resumes_exactly(env, tmp_path, separate_options,
                                                                                  mode):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    options, mode_args, kill_at = OPTIONS[mode]
    run = declare(env, tmp_path, "up.opts", source, **options, mode=mode)
    for n, name in enumerate(("a.parquet", "b.parquet", "c.parquet")):
        write_keyed(source, name, range(n * 200, n * 200 + 250), name[0])  # 50 keys of each file in the next
    killed = ingest({**run, "PYTHONPATH": str(separate_options)}, source, "up.opts", 250, *mode_args,
                    "--export-engine", "arrow", "--export-copy-during-export", "false", kill_at=kill_at)
    assert killed.returncode == -9, killed.stdout
    [(load_id,)] = query(dsn, "SELECT load_id FROM pipeline.loads")
    ok(ingest(run, source, "up.opts", 250, *mode_args, "--export-engine", "arrow"))
    assert query(dsn, "SELECT load_id FROM pipeline.published") == [(load_id,)]  # resumed, not loaded anew
    _assert_holds(dsn, source, tmp_path, mode)
    write_keyed(source, "d.parquet", range(500, 700), "d")  # the next run, on the state the resumed one left
    ok(ingest(run, source, "up.opts", 250, *mode_args, "--export-engine", "arrow"))
    _assert_holds(dsn, source, tmp_path, mode)


def _assert_holds(dsn: str, source, tmp_path, mode: str) -> None:
    if mode == "merge":
        assert_table_matches(dsn, "up", "opts", expected(source, tmp_path / "merged"))
    elif mode == "append":
        assert_table_matches(dsn, "up", "opts", with_file_names(source, tmp_path / "named"))
    else:
        assert_table_matches(dsn, "up", "opts", source)
        names = query(dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'up' AND tablename = 'opts'")
        assert names == [("opts_id_idx",)]  # named after the table, not the staging table it was made on
