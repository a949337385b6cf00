"""Column kinds and the plan's columns on disk."""

from __future__ import annotations

import pyarrow as pa

from pipeline.model.plan import Plan, SourceFile
from pipeline.types.mapping import Column, Kind, csv_order, pg_column
from pipeline.verification.rowhash import HashKind, hash_kind
from pipeline.verification.stats import Refusal, counted_refusals


def test_kinds_say_what_their_values_may_hold():
    assert [k for k in Kind if k.dated] == [Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ]
    assert [k for k in Kind if k.textual] == [Kind.TEXT, Kind.JSON]
    assert counted_refusals(pg_column("m", pa.map_(pa.string(), pa.int32()))) == [Refusal.NUL, Refusal.DUPLICATE_KEY]
    assert counted_refusals(pg_column("t", pa.timestamp("us", "UTC"))) == [Refusal.OUTSIDE_RANGE]
    assert counted_refusals(pg_column("i", pa.int8())) == []


def test_each_column_is_hashed_by_the_form_postgres_stores():
    kinds = {t: hash_kind(pg_column("c", t)) for t in (pa.bool_(), pa.int16(), pa.uint32(), pa.float16(), pa.string(),
                                                         pa.date32(), pa.time64("us"), pa.decimal128(5, 2),
                                                         pa.binary(), pa.list_(pa.int8()))}
    assert list(kinds.values()) == [HashKind.BOOL, HashKind.INT4, HashKind.INT8, HashKind.FLOAT, HashKind.TEXT,
                                    HashKind.DATE, HashKind.TIME, HashKind.FIELD, HashKind.FIELD, HashKind.FIELD]


def test_floats_go_last_in_a_csv_line():
    columns = [pg_column("f", pa.float32()), pg_column("i", pa.int32()), pg_column("d", pa.float64())]
    assert csv_order(columns) == [1, 0, 2]


def test_a_plan_reads_back_as_it_was_written_and_as_earlier_versions_wrote_it():
    columns = [pg_column("ts", pa.timestamp("ns"), truncate_ns=True), pg_column("name", pa.string())]
    plan = Plan("id", "a.b", "/src", [SourceFile("f.parquet", 10, 1)], [3], columns, [[0]])
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.columns[0].kind is Kind.TIMESTAMP and again.columns[0].nanoseconds
    # columns as version 2 of the mapping wrote them: four fields, the kind a plain string
    assert Column.from_json(["ts", "timestamp[ns]", "timestamp", "timestamp"]) == columns[0]
    assert not Column.from_json(["name", "string", "text", "text"]).nanoseconds
