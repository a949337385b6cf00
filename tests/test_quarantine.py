"""The bad-row budget against the real server, both engines: bad rows of every kind go to the quarantine with
their coordinates, the rest is published and verified, a budget one short refuses, kills leave each bad row
quarantined once, and the quarantine written out as Parquet, fixed and loaded back, completes the table."""

from __future__ import annotations

import os
import random
import signal
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO, assert_clear_failure, ingest, ingest_cmd, ok, query, run_cli
from test_options import ENGINES, declare

from pipeline.types import temporal

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("tags", pa.list_(pa.string())),
                    ("day", pa.date32()), ("attrs", pa.map_(pa.string(), pa.int32())), ("amount", pa.int32())])
TABLE = """CREATE TABLE q.t (id bigint, name text, tags jsonb, day date, attrs jsonb,
                             amount integer CONSTRAINT amount_not_negative CHECK (amount >= 0))"""
DAYS = {"a.parquet": temporal.MIN_DAYS - 1, "b.parquet": temporal.MAX_DATE_DAYS + 10, "c.parquet": -3_000_000}
# (file, row in the file): what is wrong there
BAD = {("a.parquet", 3): "name", ("a.parquet", 150): "day", ("a.parquet", 299): "tags",
       ("b.parquet", 0): "attrs", ("b.parquet", 77): "day", ("b.parquet", 120): "amount",
       ("c.parquet", 42): "day", ("c.parquet", 43): "name", ("c.parquet", 199): "amount"}
ROWS = {"a.parquet": 300, "b.parquet": 250, "c.parquet": 200}
GOOD_ROWS = sum(ROWS.values()) - len(BAD)


def _file(name: str, first_id: int, fixed: bool = False, only: set[int] | None = None) -> pa.Table:
    """The rows of one source file; ``fixed``: its bad rows mended; ``only``: just these rows."""
    rows = []
    for i in range(ROWS[name]):
        fault = None if fixed else BAD.get((name, i))
        rows.append({"id": first_id + i, "name": "with\x00nul" if fault == "name" else f"n{i}",
                     "tags": ["x", "in\x00list"] if fault == "tags" else ["x", f"t{i}"],
                     "day": DAYS[name] if fault == "day" else 19_000 + i,
                     "attrs": [("k", 1), ("k", 2)] if fault == "attrs" else [("k", i)],
                     "amount": -5 if fault == "amount" else i})
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return table if only is None else table.take(sorted(only))


def write_source(folder) -> None:
    folder.mkdir(exist_ok=True)
    for n, name in enumerate(ROWS):
        pq.write_table(_file(name, 1000 * n), folder / name, row_group_size=100)


def good_ids() -> set[int]:
    return {1000 * n + i for n, name in enumerate(ROWS) for i in range(ROWS[name]) if (name, i) not in BAD}


def quarantined(dsn: str) -> list[tuple]:
    return query(dsn, "SELECT source_file, row_index, row_group, columns, found_by FROM pipeline.quarantine "
                      "ORDER BY 1, 2")


def expected_quarantine() -> list[tuple]:
    return [(f, r, r // 100, [c], "postgres" if c == "amount" else "export") for (f, r), c in sorted(BAD.items())]


def ids(dsn: str) -> list[int]:
    return [r[0] for r in query(dsn, "SELECT id FROM q.t ORDER BY id")]


def setup(env, tmp_path, **budget):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    write_source(source)
    query(dsn, "CREATE SCHEMA q")
    query(dsn, TABLE)
    return dsn, source, declare(env, tmp_path, "q.t", source, mode="append", **budget)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_budget_that_fits_quarantines_exactly_the_bad_rows_and_publishes_the_rest(env, tmp_path, engine):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=len(BAD))
    out = ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES[engine]))
    assert "(9 bad rows quarantined)" in out, out[-3000:]
    assert ids(dsn) == sorted(good_ids())
    assert quarantined(dsn) == expected_quarantine()
    values = dict(query(dsn, "SELECT row_index, row_values FROM pipeline.quarantine WHERE source_file = 'a.parquet'"))
    assert values[3]["name"] == "with\\u0000nul" and values[3]["id"] == "3"
    assert values[150]["day"].endswith(" BC") and values[299]["tags"] == '["x", "in\\u0000list"]'
    reasons = dict(query(dsn, "SELECT source_file || row_index, reason FROM pipeline.quarantine"))
    assert reasons["b.parquet120"] == ("the check constraint 'amount_not_negative' of q.t refuses it "
                                       "(CHECK ((amount >= 0)))")
    assert reasons["b.parquet0"] == "column 'attrs' holds a map with one key twice, which a jsonb object cannot keep"
    assert query(dsn, "SELECT name, rows FROM pipeline.published_files ORDER BY 1") == [
        ("a.parquet", 297), ("b.parquet", 247), ("c.parquet", 197)]
    assert "no new file" in ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES[engine]))
    assert len(quarantined(dsn)) == len(BAD)


def test_budget_zero_refuses_as_before_and_one_short_refuses_keeping_the_rows_for_inspection(env, tmp_path):
    dsn, source, run = setup(env, tmp_path)
    failed = ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["arrow"])
    assert_clear_failure(failed, "q.t cannot be loaded: chunk 0", "holds 1 value(s) of column 'name' with a NUL byte")
    assert ids(dsn) == []
    assert query(dsn, "SELECT count(*) FROM pipeline.quarantine") == [(0,)]
    failed = ingest(run, source, "q.t", 260, "--mode", "append", "--max-bad-rows", str(len(BAD) - 1),
                    *ENGINES["arrow"])
    assert_clear_failure(failed, "q.t cannot be loaded: 9 of its 750 rows cannot be stored in PostgreSQL, more than "
                         "its budget of 8", "file 'a.parquet' row 3: column 'name' holds a NUL byte",
                         "nothing was published")
    assert ids(dsn) == []
    assert quarantined(dsn) == expected_quarantine()  # kept for inspection
    ok(ingest(run, source, "q.t", 260, "--mode", "append", "--max-bad-fraction", "0.02", *ENGINES["arrow"]))
    assert ids(dsn) == sorted(good_ids())
    assert quarantined(dsn) == expected_quarantine()  # those of the failed load went with its publish


def test_the_quarantine_written_out_fixed_and_dropped_back_completes_the_table(env, tmp_path):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=20)
    ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["arrow"]))
    listed = ok(run_cli(run, "quarantine", "q.t", "--parquet", str(tmp_path / "bad.parquet")))
    assert "a.parquet  3" in listed and "9 quarantined rows in q.t" in listed
    written = pq.read_table(tmp_path / "bad.parquet")
    assert written.schema == SCHEMA and written.num_rows == len(BAD)
    fixed = pa.concat_tables([_file(name, 1000 * n, fixed=True, only={r for f, r in BAD if f == name})
                              for n, name in enumerate(ROWS)])
    assert sorted(written.column("id").to_pylist()) == sorted(fixed.column("id").to_pylist())
    pq.write_table(fixed, source / "d-fixed.parquet")
    ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["arrow"]))
    assert ids(dsn) == sorted(1000 * n + i for n, name in enumerate(ROWS) for i in range(ROWS[name]))
    assert quarantined(dsn) == expected_quarantine()  # the bad rows of the files as they are still
    assert ok(run_cli(run, "status")).splitlines()[-1].split()[-1] == "9"  # its quarantined rows


def test_kill_at_every_point_of_a_load_in_turn_then_rerun_quarantines_each_bad_row_once(env, tmp_path):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=len(BAD))
    for point in ["export.chunk:2", "copy.before_commit:1", "copy.after_commit:2", "verify.done",
                  "publish.after_reject", "publish.after_commit"]:
        killed = ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["arrow"], kill_at=point)
        assert killed.returncode == -9, f"{point}: {killed.stdout[-3000:]}"
    assert "no new file" in ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["arrow"]))
    assert ids(dsn) == sorted(good_ids())
    assert quarantined(dsn) == expected_quarantine()


def test_kill_at_random_instants_then_rerun_quarantines_each_bad_row_once(env, tmp_path):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=len(BAD))
    seed = random.randrange(10**6)
    cmd = ingest_cmd(source, "q.t", 260, "--mode", "append", *ENGINES["spark"])
    for delay in [round(random.Random(seed + k).uniform(1, 12), 2) for k in range(3)]:
        proc = subprocess.Popen(cmd, cwd=REPO, env=run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode in (0, -9), f"seed {seed}: a run exited {proc.returncode}"
    ok(ingest(run, source, "q.t", 260, "--mode", "append", *ENGINES["spark"]))
    assert ids(dsn) == sorted(good_ids()), f"seed {seed}"
    assert quarantined(dsn) == expected_quarantine(), f"seed {seed}"


def test_a_replace_quarantines_what_the_old_tables_constraint_refuses(env, tmp_path):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=len(BAD))
    ok(ingest(run, source, "q.t", 260, "--mode", "replace", *ENGINES["spark"]))
    assert ids(dsn) == sorted(good_ids())
    assert quarantined(dsn) == expected_quarantine()
    assert query(dsn, "SELECT conname FROM pg_constraint WHERE conrelid = 'q.t'::regclass") == [
        ("amount_not_negative",)]
    assert query(dsn, "SELECT attname FROM pg_attribute WHERE attrelid = 'q.t'::regclass AND attnum > 0 "
                      "AND NOT attisdropped ORDER BY attnum") == [(c,) for c in SCHEMA.names]


def test_a_merge_with_a_budget_quarantines_and_still_refuses_a_key_twice(env, tmp_path):
    dsn, source, run = setup(env, tmp_path, max_bad_rows=len(BAD))
    merge = ("--mode", "merge", "--key", "id", *ENGINES["arrow"])
    assert "(9 bad rows quarantined)" in ok(ingest(run, source, "q.t", 260, *merge))
    assert ids(dsn) == sorted(good_ids())
    pq.write_table(_file("a.parquet", 0, fixed=True, only={3, 4}), source / "d.parquet")  # row 3 mended, 4 again
    assert "1 replaced, 1 added" in ok(ingest(run, source, "q.t", 260, *merge))
    assert ids(dsn) == sorted(good_ids() | {3})
    twice = _file("a.parquet", 0, fixed=True, only={7})
    pq.write_table(pa.concat_tables([twice, twice]), source / "e.parquet")
    assert_clear_failure(ingest(run, source, "q.t", 260, *merge), "key (id)=(7) occurs 2 times")


def _not_utf8(folder) -> None:
    """50 rows; rows 20 and 30 hold text that is not UTF-8 (COPY refuses it), row 30 the largest float, row 10 a
    quoted newline (a CSV record over two lines, before them in the chunk)."""
    folder.mkdir()
    texts = [b"fine %d" % i for i in range(50)]
    texts[10], texts[20], texts[30] = b'two\nlines "quoted"', b"bad\xff\xfe", b"also \xc3("
    raw = pa.array(texts, pa.binary())
    body = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # a string column, unvalidated
    x = [float(i) for i in range(50)]
    x[30] = 1e300
    pq.write_table(pa.table({"id": list(range(50)), "body": body, "x": x}), folder / "u.parquet", row_group_size=16)


@pytest.mark.parametrize("engine", ENGINES)
def test_rows_copy_refuses_are_found_by_their_line_quarantined_and_the_rest_verified(env, tmp_path, engine):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    _not_utf8(source)
    out = ok(ingest(env, source, "u.t", 1000, "--max-bad-rows", "2", *ENGINES[engine]))
    assert "published 48 rows (2 quarantined" in out
    assert [r[0] for r in query(dsn, "SELECT id FROM u.t ORDER BY id")] == [i for i in range(50) if i not in (20, 30)]
    assert query(dsn, "SELECT body FROM u.t WHERE id = 10") == [('two\nlines "quoted"',)]
    rows = query(dsn, "SELECT source_file, row_index, row_group, columns, found_by, reason, row_values->>'body' "
                      "FROM pipeline.quarantine ORDER BY row_index")
    assert [r[:5] for r in rows] == [("u.parquet", 20, 1, ["body"], "copy"), ("u.parquet", 30, 1, ["body"], "copy")]
    assert rows[0][5].startswith("PostgreSQL's COPY refuses its value of column 'body': invalid byte sequence")
    assert rows[0][6] == 'bad\\xff\\xfe'  # the bytes kept, hex-escaped
    failed = ingest(env, source, "u.t2", 1000, "--max-bad-rows", "1", *ENGINES[engine])
    assert_clear_failure(failed, "invalid byte sequence", "'u.parquet'")


def test_not_null_refuses_an_appended_row_and_a_replace_keeps_only_what_it_publishes(env, tmp_path):
    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", None, "c"], "n": [1, 2, -3]}), source / "a.parquet")
    query(dsn, "CREATE SCHEMA n; CREATE TABLE n.t (id bigint, name text NOT NULL, n bigint); "
               "ALTER TABLE n.t ADD CONSTRAINT positive CHECK (n > 0) NOT VALID")
    ok(ingest(env, source, "n.t", 1000, "--mode", "append", "--max-bad-rows", "2", *ENGINES["arrow"]))
    assert query(dsn, "SELECT id FROM n.t ORDER BY id") == [(1,)]
    assert query(dsn, "SELECT row_index, columns, reason FROM pipeline.quarantine ORDER BY 1") == [
        (1, ["name"], "column 'name' is NULL, which n.t declares NOT NULL"),
        (2, ["n"], "the check constraint 'positive' of n.t refuses it (CHECK ((n > 0)) NOT VALID)")]
    # a replace makes the table anew from the files: it keeps the check (NOT VALID, so not over the new rows)
    # and no NOT NULL, so nothing of it refuses a row
    ok(ingest(env, source, "n.t", 1000, "--mode", "replace", "--max-bad-rows", "2", *ENGINES["arrow"]))
    assert query(dsn, "SELECT id FROM n.t ORDER BY id") == [(1,), (2,), (3,)]
    assert query(dsn, "SELECT count(*) FROM pipeline.quarantine") == [(0,)]
