"""The table options of config/ against the real server, both engines: ``source_file_column`` (a rewritten file's
rows replaced, a removed file's deleted or kept: ``on_removed``), ``dedup = "last"`` for merges, and the declared
``primary_key`` and ``indexes``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import assert_clear_failure, assert_table_matches, ingest, ok, query
from test_merge import expected, write_keyed

ENGINES = {"arrow": ("--export-engine", "arrow"),
           "spark": ("--export-engine", "spark", "--export-spark-min-rows", "0")}  # Spark even for small ones
# Spark names files URI-encoded: a space, '+', '%' and a non-ASCII letter must come back as they are
ODD = "b + 50% é.parquet"
APPEND = ("--mode", "append")  # with --source, config/ gives the table's options only
MERGE = ("--mode", "merge", "--key", "id,day")


def declare(env: dict, tmp_path, table: str, source, **options) -> dict:
    """``env`` with a config/ declaring ``table`` with ``options``."""
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    lines = [f"{k} = {json.dumps(v)}" for k, v in {"table": table, "source": str(source), **options}.items()]
    (config / "t.toml").write_text("[[tables]]\n" + "\n".join(lines) + "\n")
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text(f"[pipeline]\nconfig_dir = {config}\n")
    return {**env, "LUIGI_CONFIG_PATH": str(cfg)}


def with_file_names(source, out, column: str = "source_file"):
    """The folder's files with ``column`` holding each row's file name: what the table should hold."""
    out.mkdir(exist_ok=True)
    for path in out.iterdir():
        path.unlink()
    for path in sorted(source.iterdir()):
        table = pq.read_table(path)
        pq.write_table(table.append_column(column, pa.array([path.name] * table.num_rows, pa.string())),
                       out / path.name)
    return out


def recorded(dsn: str) -> list[tuple]:
    return query(dsn, "SELECT name, rows FROM pipeline.published_files WHERE target_table = 't' ORDER BY name")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rewritten_file_is_reloaded_and_a_removed_one_deleted_with_a_source_file_column(env, tmp_path, engine):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    run = declare(env, tmp_path, "opt.t", source, mode="append", source_file_column="source_file",
                  on_removed="delete")
    write_keyed(source, "a.parquet", range(0, 300), "a")
    write_keyed(source, ODD, range(300, 500), "b")
    write_keyed(source, "c.parquet", range(500, 600), "c")
    ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES[engine]))
    assert_table_matches(dsn, "opt", "t", with_file_names(source, tmp_path / "expected"))
    # a file's rows are found by an index, not by a scan of the table
    assert query(dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'opt' AND tablename = 't'") == [
        ("t_source_file_idx",)]
    write_keyed(source, ODD, range(300, 650), "b2")  # rewritten: 350 rows where 200 were
    out = ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES[engine]))
    assert "appended 350 rows from 1 files, after deleting the 200 rows of 1 rewritten files" in out
    assert "pyarrow exports it instead" not in out  # Spark named every row's file as the chunk's files are named
    assert_table_matches(dsn, "opt", "t", with_file_names(source, tmp_path / "expected"))
    assert recorded(dsn) == [("a.parquet", 300), (ODD, 350), ("c.parquet", 100)]
    (source / "c.parquet").unlink()
    assert "deleted the 100 rows of 1 removed files ('c.parquet' ...)" in ok(ingest(run, source, "opt.t", 250,
                                                                                    *APPEND, *ENGINES[engine]))
    assert_table_matches(dsn, "opt", "t", with_file_names(source, tmp_path / "expected"))
    assert recorded(dsn) == [("a.parquet", 300), (ODD, 350)]
    assert query(dsn, "SELECT rows FROM pipeline.published WHERE target_table = 't'") == [(650,)]
    assert "no new file" in ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES[engine]))
    ok(ingest(run, source, "opt.t", 250, "--mode", "replace", *ENGINES[engine]))  # a replace names the files too
    assert_table_matches(dsn, "opt", "t", with_file_names(source, tmp_path / "expected"))


@pytest.mark.parametrize("point", ["copy.after_commit:1", "verify.done", "publish.after_commit"])
def test_kill_while_a_rewritten_file_is_reloaded_and_a_removed_one_deleted_then_rerun(env, tmp_path, point):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    run = declare(env, tmp_path, "opt.t", source, source_file_column="source_file", on_removed="delete")
    for name, first in (("a", 0), ("b", 300), ("c", 600)):
        write_keyed(source, f"{name}.parquet", range(first, first + 300), name)
    ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]))
    write_keyed(source, "b.parquet", range(300, 420), "b2")
    (source / "c.parquet").unlink()
    write_keyed(source, "d.parquet", range(900, 1000), "d")
    killed = ingest(run, source, "opt.t", 250, *APPEND, *ENGINES["arrow"], "--workers", "2", kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]))
    assert_table_matches(dsn, "opt", "t", with_file_names(source, tmp_path / "expected"))
    assert recorded(dsn) == [("a.parquet", 300), ("b.parquet", 120), ("d.parquet", 100)]
    assert "no new file" in ok(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]))


def test_a_removed_file_keeps_its_rows_with_on_removed_keep_and_is_refused_without(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    write_keyed(source, "b.parquet", range(300, 400), "b")
    kept = declare(env, tmp_path, "opt.t", source, mode="append", on_removed="keep")
    ok(ingest(kept, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]))
    full = tmp_path / "full"
    full.mkdir()
    os.link(source / "b.parquet", full / "b.parquet")
    (source / "b.parquet").unlink()
    write_keyed(source, "c.parquet", range(400, 450), "c")
    ok(ingest(kept, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]))
    for path in source.iterdir():
        os.link(path, full / path.name)
    assert_table_matches(dsn, "opt", "t", full)  # b's rows are still there, c's were added
    refusing = declare(env, tmp_path, "opt.t", source, mode="append")
    (source / "a.parquet").unlink()
    assert_clear_failure(ingest(refusing, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]),
                         "/a.parquet' (and 1 more) was removed", "--mode replace", "declare on_removed in config/")


@pytest.mark.parametrize("engine", ENGINES)
def test_dedup_last_keeps_the_row_of_the_latest_file_then_the_last_row(env, tmp_path, engine):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    run = declare(env, tmp_path, "mrg.t", source, mode="merge", key=["id", "day"], dedup="last")
    write_keyed(source, "a.parquet", [*range(0, 200), *range(100, 150)], "a", positions=True)  # 100..149 twice
    write_keyed(source, "b.parquet", range(180, 260), "b", positions=True)  # 180..199 again in a later file
    out = ok(ingest(run, source, "mrg.t", 100, *MERGE, *ENGINES[engine]))  # the first increment becomes the table
    assert "(70 earlier rows of a key left out)" in out
    assert_table_matches(dsn, "mrg", "t", expected(source, tmp_path / "expected"))
    assert _dropped_columns(dsn, "mrg.t") == 0  # the rows do not carry the hidden columns' bytes
    write_keyed(source, "c.parquet", [*range(250, 300), *range(250, 260)], "c", positions=True)
    write_keyed(source, "d.parquet", range(0, 20), "d", positions=True)
    out = ok(ingest(run, source, "mrg.t", 100, *MERGE, *ENGINES[engine]))
    assert "merged 80 rows from 2 files (10 earlier rows of a key left out): 30 replaced, 40 added" in out
    assert_table_matches(dsn, "mrg", "t", expected(source, tmp_path / "expected"))
    assert query(dsn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'mrg.t'::regclass AND attnum > 0 "
                      "AND NOT attisdropped") == [(4,)]


@pytest.mark.parametrize("point", ["verify.done", "publish.after_commit"])
def test_kill_during_a_merge_that_keeps_the_latest_rows_then_rerun(env, tmp_path, point):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    run = declare(env, tmp_path, "mrg.t", source, mode="merge", key=["id", "day"], dedup="last")
    write_keyed(source, "a.parquet", [*range(0, 200), *range(100, 150)], "a", positions=True)
    ok(ingest(run, source, "mrg.t", 100, *MERGE, *ENGINES["arrow"]))
    write_keyed(source, "b.parquet", [*range(150, 300), *range(290, 300)], "b", positions=True)
    killed = ingest(run, source, "mrg.t", 100, *MERGE, *ENGINES["arrow"], kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    ok(ingest(run, source, "mrg.t", 100, *MERGE, *ENGINES["arrow"]))
    assert_table_matches(dsn, "mrg", "t", expected(source, tmp_path / "expected"))


def test_the_declared_primary_key_and_indexes_are_made_once_on_every_published_table(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    indexes = "SELECT indexdef FROM pg_indexes WHERE schemaname = 'opt' AND tablename = 't'"
    for mode, first in (("replace", 1000), ("append", 2000)):
        run = declare(env, tmp_path, "opt.t", source, mode=mode, primary_key=["id", "day"],
                      indexes=[["day"], ["text", "id"]])
        out = ok(ingest(run, source, "opt.t", 250, "--mode", mode, *ENGINES["arrow"]))
        assert "made the primary key (id, day), index (day), index (text, id) config/ declares" in out
        write_keyed(source, f"{mode}.parquet", range(first, first + 10), mode)
        out = ok(ingest(run, source, "opt.t", 250, "--mode", mode, *ENGINES["arrow"]))
        assert "config/ declares" not in out
        assert sorted(d.split(" USING ")[1] for (d,) in query(dsn, indexes)) == [
            "btree (day)", "btree (id, day)", "btree (text, id)"]
        assert query(dsn, "SELECT count(*) FROM opt.t") == [(len(list(source.iterdir())) * 10 + 290,)]
        if mode == "append":
            write_keyed(source, "again.parquet", [7], "again")  # a key the table holds
            assert_clear_failure(ingest(run, source, "opt.t", 250, *APPEND, *ENGINES["arrow"]), "cannot append to "
                                 "opt.t: the new files hold a row its unique index 't_pkey' refuses (Key (id, day)=(7, "
                                 "2023-01-02) already exists); nothing was published")
            (source / "again.parquet").unlink()
        ok(ingest(run, source, "opt.t", 250, "--mode", "replace", *ENGINES["arrow"]))  # a replace keeps them
        assert len(query(dsn, indexes)) == 3
        query(dsn, "DROP TABLE opt.t")
    write_keyed(source, "dup.parquet", range(0, 10), "dup")  # ids 0..9 twice
    run = declare(env, tmp_path, "opt.t", source, primary_key="id")
    assert_clear_failure(ingest(run, source, "opt.t", 250, *ENGINES["arrow"]), "the rows for opt.t have repeated "
                         "values in (id), which config/ declares as its primary key; nothing was published")
    assert query(dsn, "SELECT to_regclass('opt.t')") == [(None,)]


def test_declared_indexes_are_checked_while_planning_and_named_after_the_table(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    run = declare(env, tmp_path, "opt.t", source, indexes=[["day"], ["text", "nope"]])
    failed = ingest(run, source, "opt.t", 250, *ENGINES["arrow"])
    assert_clear_failure(failed, "config/ declares an index on (text, nope) for opt.t, but the files in",
                         "have no column 'nope'; nothing was loaded")
    assert not list(Path(env["PIPELINE_STATE_DIR"]).rglob("plan.json"))  # found while planning
    run = declare(env, tmp_path, "opt.t", source, primary_key=["id", "day"], indexes=[["day"]], max_bad_rows=2)
    names = "SELECT indexname FROM pg_indexes WHERE schemaname = 'opt' AND tablename = 't' ORDER BY 1"
    for n in range(2):  # made on the first load, kept with their names by the next
        write_keyed(source, f"b{n}.parquet", range(1000 + n * 10, 1010 + n * 10), "b")
        ok(ingest(run, source, "opt.t", 250, *ENGINES["arrow"]))
        assert query(dsn, names) == [("t_day_idx",), ("t_pkey",)]
        assert query(dsn, "SELECT conname FROM pg_constraint WHERE conrelid = 'opt.t'::regclass") == [("t_pkey",)]
        assert _dropped_columns(dsn, "opt.t") == 0  # the bad-row budget's hidden columns are not in its rows


def _dropped_columns(dsn: str, table: str) -> int:
    """The table's dropped columns, whose bytes its rows keep until it is rewritten."""
    return query(dsn, "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass AND attisdropped",
                 (table,))[0][0]
