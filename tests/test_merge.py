"""``merge`` mode against the real server: each increment's rows replace the table's rows with the same key and
add the others, in one transaction, verified; a key twice in one increment is refused naming it and its files; a
kill at any instant of a merge, then a rerun, leaves the table the merge of every file once."""

from __future__ import annotations

import datetime as dt
import signal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import assert_clear_failure, assert_table_matches, ingest, ok, query

ARROW = ("--export-engine", "arrow")


def write_keyed(folder, name: str, ids, tag: str, positions: bool = False) -> None:
    """A file of rows keyed by (id, day), their text naming the file that wrote them (``positions``: and the row's
    position in the file, so that rows of one key in one file differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(ids)
    texts = ([f"{tag} row {n}" for n in range(len(ids))] if positions
             else [None if i % 13 == 0 else f"{tag} {i} \"q\", x" for i in ids])
    pq.write_table(pa.table({
        "id": pa.array(ids, pa.int64()),
        "day": pa.array([dt.date(2023, 1, 1 + i % 2) for i in ids], pa.date32()),
        "text": pa.array(texts, pa.string()),
        "ts": pa.array([dt.datetime(2023, 1, 1) + dt.timedelta(seconds=i, microseconds=i) for i in ids],
                       pa.timestamp("us")),
    }), folder / name)


def expected(source, out):
    """The merge of the folder's files by name order: the last row of each key wins."""
    rows = {}
    for path in sorted(source.iterdir()):
        for row in pq.read_table(path).to_pylist():
            rows[(row["id"], row["day"])] = row
    out.mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(rows.values()), pq.read_schema(next(source.iterdir()))),
                   out / "merged.parquet")
    return out


def merge(env, source, *extra, **kw):
    return ingest(env, source, "mrg.t", 250, "--mode", "merge", "--key", "id,day", *ARROW, *extra, **kw)


def assert_merged(env, source, tmp_path) -> None:
    dsn = env["PIPELINE_PG_DSN"]
    assert_table_matches(dsn, "mrg", "t", expected(source, tmp_path / "expected"))
    assert query(dsn, "SELECT count(*) = count(DISTINCT name) FROM pipeline.published_files") == [(True,)]
    staging = "SELECT tablename FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'load\\_%'"
    assert query(dsn, staging) == []


def test_increments_replace_the_rows_of_their_keys_and_add_the_others(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    write_keyed(source, "b.parquet", range(300, 600), "b")
    ok(merge(env, source))
    assert_merged(env, source, tmp_path)
    unique = query(dsn, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'mrg' AND tablename = 't'")
    assert unique == [("CREATE UNIQUE INDEX t_merge_key ON mrg.t USING btree (id, day)",)]
    write_keyed(source, "c.parquet", range(450, 900), "c")  # 150 keys in the table, 300 new
    out = ok(merge(env, source))
    assert "merged 450 rows from 1 files: 150 replaced, 300 added; the table holds 900" in out
    assert_merged(env, source, tmp_path)
    assert query(dsn, "SELECT text FROM mrg.t WHERE id = 451") == [('c 451 "q", x',)]
    assert "no new file" in ok(merge(env, source))


def test_a_key_twice_in_one_increment_is_refused_naming_it_and_its_files(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    ok(merge(env, source))
    write_keyed(source, "b.parquet", range(300, 400), "b")
    write_keyed(source, "c.parquet", range(399, 500), "c")  # (399, 2023-01-02) in both
    assert_clear_failure(merge(env, source), "(id, day)=(399, 2023-01-02) occurs 2 times", "'b.parquet'",
                         "'c.parquet'", "nothing was published")
    assert query(dsn, "SELECT count(*) FROM mrg.t") == [(300,)]


def test_a_key_column_the_files_lack_is_refused_before_any_export(env, tmp_path):
    source = tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 10), "a")
    result = ingest(env, source, "mrg.t", 250, "--mode", "merge", "--key", "id,nope", *ARROW)
    assert_clear_failure(result, "key column 'nope'", "not a column")


@pytest.mark.parametrize("point", ["copy.after_commit:1", "verify.done", "publish.after_commit"])
def test_kill_during_a_merge_then_rerun_merges_every_file_once(env, tmp_path, point):
    source = tmp_path / "src"
    write_keyed(source, "a.parquet", range(0, 300), "a")
    ok(merge(env, source))
    write_keyed(source, "b.parquet", range(200, 500), "b")
    write_keyed(source, "c.parquet", range(500, 800), "c")
    killed = merge(env, source, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    ok(merge(env, source))
    assert_merged(env, source, tmp_path)
