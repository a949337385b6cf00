"""Setting bad rows aside (``badrows.split``): which rows, the mask of those loaded, and each row's record."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline.badrows import BadRow, split
from pipeline.model.options import HIDDEN_FILE, HIDDEN_ROW, LoadOptions
from pipeline.model.plan import Plan, SourceFile
from pipeline.types.mapping import pg_column
from pipeline.types.temporal import MAX_DATE_DAYS, MIN_DAYS
from pipeline.types.text import csv_field

SCHEMA = pa.schema([("name", pa.string()), ("day", pa.date32()), ("tags", pa.map_(pa.string(), pa.string())),
                    ("blob", pa.binary())])
ROWS = {
    "name": ["ok", "a\x00b", None, 'q"', None, "x"],
    "day": [0, MIN_DAYS - 1, None, MAX_DATE_DAYS + 1, None, 5],
    "tags": [[("k", "1")], None, [("a", "1"), ("a", "2")], [], None, [("n", "v\x00")]],
    "blob": [b"\x00", None, b"\xff", b"", None, b"a"],
}
FILES = ["a.parquet"] * 3 + ["b.parquet"] * 3
ROW_INDICES = [10, 11, 12, 0, 1, 2]  # each row's index in its file (the batch is not the file's start)

NUL = "holds a NUL byte, which PostgreSQL text and jsonb cannot store"
OUTSIDE = "holds a date or timestamp outside PostgreSQL's range (4714-11-24 BC to 5874897 AD)"
TWICE = "holds a map with one key twice, which a jsonb object cannot keep"


def _plan(budget: int | None = 3, file_column: str = HIDDEN_FILE) -> Plan:
    """A load of ``SCHEMA`` with each row's file (``file_column``: hidden, or a source_file_column) and index."""
    columns = [pg_column(f.name, f.type) for f in SCHEMA] + [pg_column(file_column, pa.string()),
                                                              pg_column(HIDDEN_ROW, pa.int64())]
    return Plan("load1", "shop.orders", "/data/orders", [SourceFile("a.parquet", 1, 1), SourceFile("b.parquet", 1, 1)],
                [13, 3], columns, [[0, 1]], options=LoadOptions(
                    source_file_column="" if file_column == HIDDEN_FILE else file_column,
                    bad_rows=None if budget is None else (budget, 0)))


def _split(plan: Plan, rows: dict | None = None) -> tuple[list[BadRow], pa.Array | None, pa.RecordBatch]:
    """``split`` of a batch of ``rows`` (default ``ROWS``) with its CSV fields, as the per-batch core calls it."""
    rows = ROWS if rows is None else rows
    count = len(rows["name"])
    arrays = [pa.array(rows[f.name], f.type) for f in SCHEMA] + [pa.array(FILES[:count]),
                                                                 pa.array(ROW_INDICES[:count], pa.int64())]
    batch = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in plan.columns])
    found, keep = split(plan, batch, [csv_field(c, batch.column(i)) for i, c in enumerate(plan.columns)])
    return found, keep, batch


def test_without_a_budget_nothing_is_set_aside():
    assert _split(_plan(budget=None))[:2] == ([], None)


def test_with_a_budget_and_no_bad_value_every_row_is_loaded():
    good = {name: [values[0], values[4]] for name, values in ROWS.items()}  # a good row, and one of NULLs
    assert _split(_plan(), good)[:2] == ([], None)


@pytest.mark.parametrize("budget", [0, 3])  # how many rows a load may set aside is judged later, not here
def test_bad_rows_are_set_aside_with_their_file_row_columns_reason_and_values(budget):
    found, _, _ = _split(_plan(budget))
    assert found == [
        BadRow("a.parquet", 11, ["day", "name"], f"column 'name' {NUL}; column 'day' {OUTSIDE}",
               {"name": "a\\u0000b", "day": "4714-11-23 BC", "tags": None, "blob": None}),
        # the mark of a key twice (a control character no valid text holds) stays in front of the value
        BadRow("a.parquet", 12, ["tags"], f"column 'tags' {TWICE}",
               {"name": None, "day": None, "tags": '\x01{"a": "1", "a": "2"}', "blob": "\\xff"}),
        BadRow("b.parquet", 0, ["day"], f"column 'day' {OUTSIDE}",
               {"name": 'q"', "day": "5874898-01-01", "tags": "{}", "blob": "\\x"}),
        BadRow("b.parquet", 2, ["tags"], f"column 'tags' {NUL}",  # a NUL inside a nested value
               {"name": "x", "day": "1970-01-06", "tags": '{"n": "v\\u0000"}', "blob": "\\x61"}),
    ]


def test_the_mask_keeps_the_good_rows_and_null_values_are_never_bad():
    _, keep, batch = _split(_plan())
    assert keep.to_pylist() == [True, False, False, False, True, False]
    kept = batch.filter(keep)
    assert kept.column(HIDDEN_ROW).to_pylist() == [10, 1] and kept.column("name").to_pylist() == ["ok", None]
    assert pc.sum(keep).as_py() + len(_split(_plan())[0]) == batch.num_rows


def test_a_declared_source_file_column_is_among_the_values_and_the_hidden_row_index_is_not():
    found, _, _ = _split(_plan(file_column="source_file"))
    assert found[0].file == "a.parquet"
    assert found[0].values == {"name": "a\\u0000b", "day": "4714-11-23 BC", "tags": None, "blob": None,
                               "source_file": "a.parquet"}


def test_a_nul_in_a_map_key_is_set_aside_like_one_in_a_map_value():
    rows = {**{name: values[:1] for name, values in ROWS.items()}, "tags": [[("n\x00", "v")]]}
    found, _, _ = _split(_plan(), rows)
    assert [(bad.columns, bad.values["tags"]) for bad in found] == [(["tags"], '{"n\\u0000": "v"}')]
