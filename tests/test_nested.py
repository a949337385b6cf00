"""Lists, structs and maps load as jsonb, written in jsonb's own text form, on both engines."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import assert_clear_failure, assert_table_matches, ingest, ok, query, table_exists

from pipeline.errors import UnsupportedTypeError
from pipeline.types.mapping import pg_column
from pipeline.types.nested import json_texts

UTC = dt.UTC


def edge_arrays() -> dict[str, pa.Array]:
    """Nested arrays holding every kind of value, with its edges."""
    return {
        "ints": pa.array([[1, None, -2**63, 2**63 - 1], [], None], pa.list_(pa.int64())),
        "uint64": pa.array([[2**64 - 1, 0]], pa.list_(pa.uint64())),
        "f32": pa.array([[0.1, -0.0, math.nan, math.inf, -math.inf, 3.4028234663852886e38, 1.401298464324817e-45,
                          1e16, 1.5e-7]], pa.list_(pa.float32())),
        "f64": pa.array([[0.1, -0.0, math.nan, 1.7976931348623157e308, 5e-324, 1 / 3, 1e15, 1e16, 123.0]],
                        pa.list_(pa.float64())),
        "decimals": pa.array([[Decimal("1.50"), Decimal("-0.01"), Decimal("0.00"), None]],
                             pa.list_(pa.decimal128(12, 2))),
        "dec38": pa.array([[Decimal("9" * 28 + "." + "9" * 10), Decimal("0E-10")]], pa.list_(pa.decimal128(38, 10))),
        "strings": pa.array([['a "b"', "\\", "\n\t\r\b\f", "\x01\x1f\x7f", "é😀", "", "\u2028"]],
                            pa.list_(pa.string())),
        "bytes": pa.array([[b"\x00\xff", b""]], pa.list_(pa.binary())),
        "dates": pa.array([[dt.date(1, 1, 1), dt.date(9999, 12, 31)]], pa.list_(pa.date32())),
        "ts": pa.array([[dt.datetime(2023, 1, 1), dt.datetime(2023, 1, 1, 0, 0, 0, 500000),
                         dt.datetime(1, 1, 1, 0, 0, 0, 1)]], pa.list_(pa.timestamp("us"))),
        "tstz": pa.array([[dt.datetime(2023, 6, 1, 12, 0, 0, 5, tzinfo=UTC)]],
                         pa.list_(pa.timestamp("us", "America/New_York"))),
        "times": pa.array([[dt.time(0, 0), dt.time(23, 59, 59, 999999)]], pa.list_(pa.time64("us"))),
        "bools": pa.array([[True, False, None]], pa.list_(pa.bool_())),
        "nested": pa.array([[[1], [], None]], pa.list_(pa.list_(pa.int8()))),
        "fixed": pa.array([[1, 2]], pa.list_(pa.int16(), 2)),
        "struct": pa.array([{"bb": 1, "a": "x", "ccc": None, "é": [1.5], "B": {"z": True}}],
                           pa.struct([("bb", pa.int32()), ("a", pa.string()), ("ccc", pa.int32()),
                                      ("é", pa.list_(pa.float64())), ("B", pa.struct([("z", pa.bool_())]))])),
        "map": pa.array([[("b", 1), ("a", None), ("aa", 3), ("\n", 4), ('"', 5)]], pa.map_(pa.string(), pa.int32())),
        "int_keys": pa.array([[(10, "x"), (2, "y"), (-1, "z")], []], pa.map_(pa.int64(), pa.string())),
        "byte_keys": pa.array([[(b"\x01", 1)]], pa.map_(pa.binary(), pa.int32())),
        "large": pa.array([["x"]], pa.large_list(pa.large_string())),
    }


def test_nested_values_are_written_as_postgresql_prints_them_back(db):
    """Byte for byte what jsonb::text gives for the written text - the row checksum relies on it."""
    compared = 0
    for name, values in edge_arrays().items():
        for text in json_texts(values, name).to_pylist():
            if text is not None:
                assert query(db, "SELECT %s::jsonb::text", (text,)) == [(text,)], name
                compared += 1
    assert compared == 22
    # and the scalars inside follow PostgreSQL's own to_jsonb
    assert json_texts(pa.array([[math.nan, -0.0]], pa.list_(pa.float64())), "c").to_pylist() == \
        [query(db, "SELECT jsonb_build_array('NaN'::float8, '-0'::float8)::text")[0][0]]
    assert json_texts(edge_arrays()["bytes"], "c")[0].as_py() == \
        query(db, "SELECT jsonb_build_array('\\x00ff'::bytea, ''::bytea)::text")[0][0]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("chunk_format", ["csv", "binary"])
def test_every_edge_value_loads_as_written_on_both_engines(env, tmp_path, engine, chunk_format):
    """Spark hands the per-batch core the values in its own types (uint64 as decimal(20,0), times, zones):
    the loaded jsonb is the same text either way."""
    arrays = edge_arrays()
    rows = max(len(a) for a in arrays.values())
    table = pa.table({"id": pa.array(range(rows), pa.int32()),
                      **{k: pa.concat_arrays([a, pa.nulls(rows - len(a), a.type)]) for k, a in arrays.items()}})
    source = tmp_path / "edges"
    source.mkdir()
    pq.write_table(table, source / "a.parquet")
    out = ok(ingest(env, source, "types.edges", 10, "--export-engine", engine, "--export-chunk-format", chunk_format))
    assert "pyarrow exports it instead" not in out and f"1 {chunk_format.replace('csv', 'CSV')} chunks" in out
    for name in arrays:
        loaded = query(env["PIPELINE_PG_DSN"], f'SELECT "{name}"::text FROM types.edges ORDER BY id')
        assert [v for (v,) in loaded] == json_texts(table[name].combine_chunks(), name).to_pylist(), name


def nested_table() -> pa.Table:
    item = pa.struct([("sku", pa.string()), ("qty", pa.int32()), ("price", pa.decimal128(9, 2))])
    return pa.table({
        "id": pa.array([0, 1, 2, 3], pa.int32()),
        "tags": pa.array([["a", "b,c"], [], None, ['q"uote', None]], pa.list_(pa.string())),
        "items": pa.array([[{"sku": "x", "qty": 2, "price": Decimal("9.99")}], None, [], [None]], pa.list_(item)),
        "attrs": pa.array([[("k", 1.5), ("j", math.nan)], [], None, [("z", None)]], pa.map_(pa.string(), pa.float64())),
        "point": pa.array([{"x": 1, "y": None}, None, {"x": None, "y": None}, {"x": -1, "y": 2}],
                          pa.struct([("x", pa.int64()), ("y", pa.int64())])),
        "seen": pa.array([[dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)], None, None, []],
                         pa.list_(pa.timestamp("us", "UTC"))),
        "score": pa.array([0.1, None, math.nan, -2.5], pa.float64()),
    })


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("chunk_format", ["csv", "binary"])
def test_lists_structs_and_maps_load_as_jsonb(env, tmp_path, engine, chunk_format):
    source = tmp_path / "nested"
    source.mkdir()
    pq.write_table(nested_table(), source / "a.parquet")
    out = ok(ingest(env, source, "types.nested", 2, "--export-engine", engine, "--export-chunk-format", chunk_format))
    assert "counts and checksums match" in out and f"1 {chunk_format.replace('csv', 'CSV')} chunks" in out
    assert "pyarrow exports it instead" not in out
    dsn = env["PIPELINE_PG_DSN"]
    types = set(query(dsn, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'types' "
                           "AND table_name = 'nested' AND column_name NOT IN ('id', 'score')"))
    assert types == {("jsonb",)}
    rows = query(dsn, "SELECT tags::text, items::text, attrs::text, point::text, seen::text "
                      "FROM types.nested ORDER BY id")
    assert rows == [
        ('["a", "b,c"]', '[{"qty": 2, "sku": "x", "price": 9.99}]', '{"j": "NaN", "k": 1.5}', '{"x": 1, "y": null}',
         '["2024-02-29T23:59:59.999999+00:00"]'),
        ("[]", None, "{}", None, None),  # an empty list or map is not a NULL one
        (None, "[]", None, '{"x": null, "y": null}', None),
        ('["q\\"uote", null]', "[null]", '{"z": null}', '{"x": -1, "y": 2}', "[]"),
    ]
    assert query(dsn, "SELECT items -> 0 ->> 'price' FROM types.nested WHERE id = 0") == [("9.99",)]
    assert_table_matches(dsn, "types", "nested", source)


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("values, reason", [
    (pa.array([["fine"], ["bad\x00word"]], pa.list_(pa.string())),
     "with a NUL byte; PostgreSQL text and jsonb cannot store NUL"),
    (pa.array([[("a", 1), ("a", 2)], [("a", 1)]], pa.map_(pa.string(), pa.int32())),
     "holding a map with one key twice; a jsonb object keeps only one"),
], ids=["nul", "duplicate-key"])
def test_values_jsonb_cannot_hold_are_refused_naming_column_and_chunk(env, tmp_path, engine, values, reason):
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(pa.table({"id": pa.array([0, 1], pa.int32()), "nested": values}), source / "a.parquet")
    result = ingest(env, source, "bad.t", 10, "--export-engine", engine)
    assert_clear_failure(result, f"1 value(s) of column 'nested' {reason}", "chunk 0", "'a.parquet'")
    assert not table_exists(env["PIPELINE_PG_DSN"], "bad", "t")


@pytest.mark.parametrize("arrow_type, phrase", [
    (pa.struct([("a", pa.int32()), ("a", pa.string())]), "two fields named 'a'"),
    (pa.list_(pa.timestamp("ns")), "holds nanoseconds inside a list, struct or map"),
    (pa.map_(pa.string(), pa.duration("s")), "has type duration[s]"),
])
def test_nested_types_jsonb_cannot_hold_exactly_are_refused(arrow_type, phrase):
    with pytest.raises(UnsupportedTypeError, match="'col'") as refused:
        pg_column("col", arrow_type)
    assert phrase in str(refused.value)


def test_a_changed_jsonb_value_is_caught_naming_the_column(env, tmp_path):
    dsn = env["PIPELINE_PG_DSN"]
    source = tmp_path / "src"
    source.mkdir()
    pq.write_table(nested_table(), source / "a.parquet")
    pq.write_table(nested_table(), source / "b.parquet")
    args = ("--export-engine", "arrow")
    assert ingest(env, source, "tamper.n", 4, *args, kill_at="copy.done:2").returncode == -9
    (load_id,) = query(dsn, "SELECT load_id FROM pipeline.loads")[0]
    query(dsn, f"UPDATE pipeline.load_{load_id} SET attrs = jsonb_set(attrs, '{{k}}', '1.50') WHERE id = 0")
    failed = ingest(env, source, "tamper.n", 4, *args)
    assert_clear_failure(failed, "values were changed in column 'attrs'", "nothing was published")
    assert not table_exists(dsn, "tamper", "n")
