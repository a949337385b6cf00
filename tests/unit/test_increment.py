"""Which files an append takes (``source.increment.pending``): new ones with a footer, not those still being
written; recorded ones rewritten or removed are named; a recorded one touched or copied unchanged is not."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.model.load import Load
from pipeline.model.options import LoadOptions
from pipeline.postgres.state import Recorded
from pipeline.source.footers import footer_digest
from pipeline.source.increment import pending
from pipeline.source.listing import list_files


def write(path, n):
    pq.write_table(pa.table({"x": list(range(n))}), path)


def test_new_rewritten_removed_touched_and_incomplete_files_are_told_apart(tmp_path):
    for name, n in (("a", 3), ("b", 4), ("c", 5), ("gone", 1)):
        write(tmp_path / f"{name}.parquet", n)
    recorded = {}
    for f in list_files(tmp_path):
        recorded[f.name] = Recorded(f.size, f.mtime_ns, footer_digest(tmp_path / f.name), "L")
    (tmp_path / "gone.parquet").unlink()
    os.utime(tmp_path / "a.parquet", ns=(1, 1))  # touched: same bytes
    write(tmp_path / "b.parquet", 40)  # rewritten
    write(tmp_path / "d.parquet", 2)  # new
    whole = (tmp_path / "d.parquet").read_bytes()
    (tmp_path / "e.parquet").write_bytes(whole[:-6])  # still being written: no closing magic yet
    found = pending(str(tmp_path), list_files(tmp_path), recorded)
    assert [f.name for f in found.new] == ["d.parquet"]
    assert [f.name for f in found.rewritten] == ["b.parquet"]
    assert found.removed == ["gone.parquet"]
    assert found.incomplete == ["e.parquet"]


def test_an_increment_is_a_load_of_its_own():
    replace = Load("a.b", "/src", 10, "f")
    assert Load("a.b", "/src", 10, "f", LoadOptions("replace")).load_id == replace.load_id
    assert Load("a.b", "/src", 10, "f", LoadOptions("append")).load_id != replace.load_id


def test_a_new_or_rewritten_file_changed_within_the_settle_time_waits(tmp_path):
    write(tmp_path / "a.parquet", 3)
    f = list_files(tmp_path)[0]
    recorded = {"a.parquet": Recorded(f.size, f.mtime_ns, footer_digest(tmp_path / f.name), "L")}
    write(tmp_path / "a.parquet", 4)  # rewritten just now
    write(tmp_path / "b.parquet", 2)  # new, just now
    found = pending(str(tmp_path), list_files(tmp_path), recorded, settle_seconds=60)
    assert (found.new, found.rewritten, found.incomplete) == ([], [], ["a.parquet", "b.parquet"])
    old = (os.stat(tmp_path / "b.parquet").st_mtime_ns - 61 * 10**9,) * 2
    for name in ("a.parquet", "b.parquet"):
        os.utime(tmp_path / name, ns=old)
    found = pending(str(tmp_path), list_files(tmp_path), recorded, settle_seconds=60)
    assert ([f.name for f in found.new], [f.name for f in found.rewritten]) == (["b.parquet"], ["a.parquet"])


def test_the_options_that_change_the_chunks_make_another_load():
    merge = LoadOptions("merge", ("id",))
    plain = Load("a.b", "/src", 10, "f", merge)
    named = plain._replace(options=LoadOptions("merge", ("id",), source_file_column="source_file"))
    latest = plain._replace(options=LoadOptions("merge", ("id",), dedup=True))
    indexed = plain._replace(options=LoadOptions("merge", ("id",), primary_key=("id",), indexes=(("day",),)))
    assert len({plain.load_id, named.load_id, latest.load_id}) == 3
    assert indexed.load_id == plain.load_id  # declared indexes do not change the rows loaded
    assert (named.options.file_column, named.options.row_column) == ("source_file", "")
    assert (latest.options.file_column, latest.options.row_column) == ("_pipeline_file", "_pipeline_row")


@pytest.mark.parametrize("options, load_id", [
    (LoadOptions(), "e55405fcf0d0c7a4"),
    (LoadOptions("append"), "2655d0a333dc32f6"),
    (LoadOptions("merge", ("id", "day")), "41a17c28a68d3696"),
    (LoadOptions("append", source_file_column="src"), "9cf77e69185a4c38"),
    (LoadOptions("merge", ("id",), dedup=True), "8f58de273996b0b1"),
    (LoadOptions(bad_rows=(10, 0.5)), "5f7fffa761296ef5"),
    (LoadOptions("merge", ("id",), "src", True, (0, 0.001)), "c55d795295445e3e"),
])
def test_load_ids_are_those_earlier_versions_gave(options, load_id):
    """Pinned: a load an earlier version started or finished keeps its id, so a rerun resumes it, never repeats it."""
    assert Load("a.b", "/src", 10, "f", options).load_id == load_id


def test_the_options_round_trip_through_their_task_parameter():
    chosen = LoadOptions("merge", ("id", "day"), "src", True, (3, 0.25), ("id", "day"), (("day",), ("src", "id")))
    assert LoadOptions.from_json(chosen.to_json()) == chosen
    assert LoadOptions().to_json() == "" and LoadOptions.from_json("") == LoadOptions()
