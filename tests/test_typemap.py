"""Every supported Parquet type round-trips exactly; the content checksum catches a changed value."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import assert_clear_failure, assert_table_matches, ingest, ok, query, write_awkward

from pipeline.errors import UnsupportedTypeError
from pipeline.types.mapping import pg_column

UTC = dt.UTC


def matrix() -> pa.Table:
    """Each column: edge values and a NULL."""
    f32 = [0.1, -0.0, math.inf, -math.inf, math.nan, 3.4028234663852886e38, 1.401298464324817e-45, None]
    f64 = [0.1, -0.0, math.inf, -math.inf, math.nan, 1.7976931348623157e308, 5e-324, None]
    n = len(f64)

    def pad(values):
        return (values * n)[:n - 1] + [None]

    columns = {
        "bool": pa.array(pad([True, False]), pa.bool_()),
        "int8": pa.array(pad([-128, 127, 0]), pa.int8()),
        "int16": pa.array(pad([-32768, 32767]), pa.int16()),
        "int32": pa.array(pad([-2**31, 2**31 - 1]), pa.int32()),
        "int64": pa.array(pad([-2**63, 2**63 - 1]), pa.int64()),
        "uint8": pa.array(pad([0, 255]), pa.uint8()),
        "uint16": pa.array(pad([0, 65535]), pa.uint16()),
        "uint32": pa.array(pad([0, 2**32 - 1]), pa.uint32()),
        "uint64": pa.array(pad([0, 2**64 - 1]), pa.uint64()),
        "float32": pa.array(f32, pa.float32()),
        "float64": pa.array(f64, pa.float64()),
        "float32_finite": pa.array(pad([714285.56, -3.3, 0.1]), pa.float32()),  # min/max compare as float32
        "float64_finite": pa.array(pad([1 / 3, -2.5e-300]), pa.float64()),
        "dec5_2": pa.array(pad([Decimal("-999.99"), Decimal("0.01"), Decimal("0.00")]), pa.decimal128(5, 2)),
        "dec18_6": pa.array(pad([Decimal("123456789012.345678"), Decimal("-0.000001")]), pa.decimal128(18, 6)),
        "dec38_10": pa.array(pad([Decimal("9" * 28 + "." + "9" * 10), Decimal("0E-10"), Decimal("-1.5")]),
                             pa.decimal128(38, 10)),
        "dec38_0": pa.array(pad([Decimal("9" * 38), Decimal("-" + "9" * 38)]), pa.decimal128(38, 0)),
        "string": pa.array(pad(['a "b", c', "", " x ", "\\N", "NULL", "é😀"]), pa.string()),
        "large_string": pa.array(pad(["line\nbreak", "tab\t", ""]), pa.large_string()),
        "dictionary": pa.array(pad(["red", "green", "red"]), pa.string()).dictionary_encode(),
        "binary": pa.array(pad([b"\x00\x01\xff", b"", b'"q",']), pa.binary()),
        "large_binary": pa.array(pad([b"\x00" * 5, b"abc"]), pa.large_binary()),
        "fixed_binary": pa.array(pad([b"\x00\x01\x02\x03", b"abcd"]), pa.binary(4)),
        "date": pa.array(pad([dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1970, 1, 1)]), pa.date32()),
        "ts_s": pa.array(pad([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)]), pa.timestamp("s")),
        "ts_ms": pa.array(pad([dt.datetime(2023, 1, 1, 0, 0, 0, 1000)]), pa.timestamp("ms")),
        "ts_us": pa.array(pad([dt.datetime(2023, 1, 1, 0, 0, 0, 1), dt.datetime(1582, 10, 4, 23, 59, 59, 999999)]),
                          pa.timestamp("us")),
        "tstz_us": pa.array(pad([dt.datetime(2023, 6, 1, 12, 0, 0, 999999, tzinfo=UTC)]), pa.timestamp("us", "UTC")),
        "tstz_ny": pa.array(pad([dt.datetime(2023, 6, 1, 12, 0, 0, 5, tzinfo=UTC)]),
                            pa.timestamp("us", "America/New_York")),
        "time_us": pa.array(pad([dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0, 0, 5)]),
                            pa.time64("us")),
    }
    return pa.table(columns)


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("chunk_format", ["csv", "binary"])
def test_type_matrix_round_trips_exactly(env, tmp_path, engine, chunk_format):
    source = tmp_path / "matrix"
    source.mkdir()
    table = matrix()
    pq.write_table(table, source / "a.parquet")
    pq.write_table(table, source / "b.parquet", store_decimal_as_integer=True)  # int32/int64 decimal encodings
    out = ok(ingest(env, source, "types.matrix", 5, "--export-engine", engine, "--export-chunk-format", chunk_format))
    assert "counts and checksums match" in out
    assert f"2 {'binary' if chunk_format == 'binary' else 'CSV'} chunks" in out  # a file a chunk
    assert "pyarrow exports it instead" not in out  # Spark's executors ran the per-batch core on every chunk
    assert_table_matches(env["PIPELINE_PG_DSN"], "types", "matrix", source)
    types = dict(query(env["PIPELINE_PG_DSN"], "SELECT column_name, data_type FROM information_schema.columns "
                                               "WHERE table_schema = 'types' AND table_name = 'matrix'"))
    assert types["uint64"] == "numeric" and types["float32"] == "real" and types["tstz_ny"].endswith("with time zone")


@pytest.mark.parametrize("engine", ["spark", "arrow"])
def test_int96_timestamps_load_as_microsecond_timestamps(env, tmp_path, engine):
    """INT96, as Spark, Impala and Hive write timestamps: read at µs, the whole range and every digit kept."""
    source = tmp_path / "int96"
    source.mkdir()
    values = [dt.datetime(2023, 1, 1, 0, 0, 0, 123456), dt.datetime(1000, 6, 15, 12), None,
              dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(1582, 10, 4, 23, 59, 59, 1)]
    table = pa.table({"id": pa.array(range(len(values)), pa.int32()), "ts": pa.array(values, pa.timestamp("us"))})
    pq.write_table(table, source / "a.parquet", use_deprecated_int96_timestamps=True)
    assert pq.read_metadata(source / "a.parquet").schema.column(1).physical_type == "INT96"
    assert "pyarrow exports it instead" not in ok(ingest(env, source, "types.int96", 10, "--export-engine", engine))
    assert_table_matches(env["PIPELINE_PG_DSN"], "types", "int96", source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT ts::text FROM types.int96 WHERE id = 1") == [("1000-06-15 12:00:00",)]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
def test_what_spark_cannot_read_loads_through_pyarrow(env, tmp_path, engine):
    """Millisecond times of day and half-precision floats: Spark's Parquet reader refuses both, so the Spark
    engine hands the chunk to pyarrow."""
    source = tmp_path / "t32"
    source.mkdir()
    times = pa.array([dt.time(1, 2, 3, 4000), dt.time(0, 0), None, dt.time(23, 59, 59, 999000)], pa.time32("ms"))
    halves = pa.array(np.array([0.1, np.nan, -65504, 6e-8], dtype=np.float16))
    pq.write_table(pa.table({"id": pa.array(range(4), pa.int32()), "t": times, "h": halves}), source / "a.parquet")
    out = ok(ingest(env, source, "types.t32", 10, "--export-engine", engine))
    assert ("pyarrow exports it instead" in out) == (engine == "spark")
    assert "counts and checksums match" in out
    assert_table_matches(env["PIPELINE_PG_DSN"], "types", "t32", source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT h::text FROM types.t32 ORDER BY id") == [
        ("0.099975586",), ("NaN",), ("-65504",), ("5.9604645e-08",)]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("chunk_format", ["csv", "binary"])
def test_years_outside_1_to_9999_load_as_postgres_holds_them(env, tmp_path, engine, chunk_format):
    """PostgreSQL holds dates and timestamps from 4714-11-24 BC to 294276 AD (dates to 5874897 AD); the export
    writes the years outside 1-9999 as PostgreSQL prints them, also inside jsonb."""
    source = tmp_path / "years"
    source.mkdir()
    day = 86_400_000_000
    days = [-2_440_588, -735_160, -719_528, -719_163, 2_932_897, 105_201_161, 2_145_042_905, 0, None]
    micros = [d * day + 82_800_000_001 if d is not None and d < 106_000_000 else None for d in days]
    table = pa.table({
        "id": pa.array(range(len(days)), pa.int32()),
        "d": pa.array(days, pa.date32()),
        "ts": pa.array(micros, pa.timestamp("us")),
        "tz": pa.array(micros, pa.timestamp("us", "UTC")),
        "nested": pa.array([None if m is None else {"at": m, "on": d} for m, d in zip(micros, days, strict=True)],
                           pa.struct([("at", pa.timestamp("us", "UTC")), ("on", pa.date32())])),
    })
    pq.write_table(table, source / "a.parquet")
    out = ok(ingest(env, source, "types.years", 100, "--export-engine", engine, "--export-chunk-format", chunk_format))
    assert "counts and checksums match" in out and f"1 {chunk_format.replace('csv', 'CSV')} chunks" in out
    assert_table_matches(env["PIPELINE_PG_DSN"], "types", "years", source)
    texts = query(env["PIPELINE_PG_DSN"], "SELECT d::text, ts::text, tz::text, nested::text FROM types.years "
                                          "WHERE id IN (0, 1, 5) ORDER BY id")
    assert texts == [
        ("4714-11-24 BC", "4714-11-24 23:00:00.000001 BC", "4714-11-24 23:00:00.000001+00 BC",
         '{"at": "4714-11-24T23:00:00.000001+00:00 BC", "on": "4714-11-24 BC"}'),
        ("0044-03-15 BC", "0044-03-15 23:00:00.000001 BC", "0044-03-15 23:00:00.000001+00 BC",
         '{"at": "0044-03-15T23:00:00.000001+00:00 BC", "on": "0044-03-15 BC"}'),
        ("290000-12-30", "290000-12-30 23:00:00.000001", "290000-12-30 23:00:00.000001+00",
         '{"at": "290000-12-30T23:00:00.000001+00:00", "on": "290000-12-30"}')]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
@pytest.mark.parametrize("chunk_format", ["csv", "binary"])
def test_nanoseconds_are_refused_unless_truncation_is_asked_for(env, tmp_path, engine, chunk_format):
    source = tmp_path / "ns"
    source.mkdir()
    ns = [1_672_531_200_123_456_789, -1, -1_000, None, 0, 2**63 - 1]
    table = pa.table({"id": pa.array(range(len(ns)), pa.int32()), "ts": pa.array(ns, pa.timestamp("ns")),
                      "tz": pa.array(ns, pa.timestamp("ns", "UTC"))})
    pq.write_table(table, source / "a.parquet")
    refused = ingest(env, source, "types.ns", 10, "--export-engine", engine)
    assert_clear_failure(refused, "column 'ts' holds nanoseconds (timestamp[ns])")
    out = ok(ingest(env, source, "types.ns", 10, "--export-engine", engine, "--export-truncate-nanoseconds", "true",
                    "--export-chunk-format", chunk_format))
    assert f"1 {chunk_format.replace('csv', 'CSV')} chunks" in out
    loaded = query(env["PIPELINE_PG_DSN"], "SELECT ts::text, tz::text FROM types.ns ORDER BY id")
    assert loaded == [("2023-01-01 00:00:00.123456", "2023-01-01 00:00:00.123456+00"),
                      ("1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999+00"),  # rounded down
                      ("1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999+00"),
                      (None, None), ("1970-01-01 00:00:00", "1970-01-01 00:00:00+00"),
                      ("2262-04-11 23:47:16.854775", "2262-04-11 23:47:16.854775+00")]


@pytest.mark.parametrize("arrow_type", [pa.timestamp("ns"), pa.dense_union([pa.field("a", pa.int32())]),
                                        pa.time64("ns"), pa.duration("us")])
def test_unmappable_types_are_refused_with_the_column_named(arrow_type):
    with pytest.raises(UnsupportedTypeError, match="'col'"):
        pg_column("col", arrow_type)


@pytest.mark.parametrize("tamper, phrase, engine", [
    ("UPDATE {t} SET text = 'x' || text WHERE id = 3", "the row checksum differs", "spark"),
    ("UPDATE {t} SET ts = ts + interval '1 microsecond' WHERE id = 0", "values were changed in column 'ts'", "spark"),
    ("UPDATE {t} SET \"other text\" = NULL WHERE id = 1", "column 'other text': NULL count", "spark"),
    ("UPDATE {t} SET text = 'x' || text WHERE id = 3", "values were changed in column 'text'", "arrow"),
    ("UPDATE {t} SET ts = ts + interval '1 microsecond' WHERE id = 0", "the row checksum differs", "arrow"),
    ("UPDATE {t} SET (id, tz) = (id + 1, tz - interval '1 day') WHERE id = 5", "columns 'id', 'tz'", "arrow"),
])
def test_a_value_changed_between_copy_and_verify_is_caught(env, tmp_path, tamper, phrase, engine):
    dsn = env["PIPELINE_PG_DSN"]
    source = tmp_path / "src"
    write_awkward(source, files=2, rows_per_file=50)
    engine_args = ("--export-engine", engine)
    assert ingest(env, source, "tamper.t", 50, *engine_args, kill_at="copy.done:2").returncode == -9
    (load_id,) = query(dsn, "SELECT load_id FROM pipeline.loads")[0]
    query(dsn, tamper.format(t=f"pipeline.load_{load_id}"))
    failed = ingest(env, source, "tamper.t", 50, *engine_args)
    assert_clear_failure(failed, phrase, "nothing was published")
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'tamper'") == [(0,)]


@pytest.mark.parametrize("engine", ["spark", "arrow"])
def test_a_float_changed_inside_its_range_is_caught_by_the_value_checksum(env, tmp_path, engine):
    """Neither the NaN count nor min/max move: only the hash of the values' exact bits can tell."""
    dsn = env["PIPELINE_PG_DSN"]
    source = tmp_path / "floats"
    source.mkdir()
    for f in range(2):
        ids = list(range(f * 4, f * 4 + 4))
        pq.write_table(pa.table({"id": pa.array(ids, pa.int32()),
                                 "x": pa.array([-1.0, 0.1, math.nan, 7.0], pa.float64()),
                                 "r": pa.array([-1.0, 0.1, None, 7.0], pa.float32())}), source / f"{f}.parquet")
    args = ("--export-engine", engine)
    assert ingest(env, source, "tamper.f", 4, *args, kill_at="copy.done:2").returncode == -9
    (load_id,) = query(dsn, "SELECT load_id FROM pipeline.loads")[0]
    query(dsn, f"UPDATE pipeline.load_{load_id} SET x = 0.10000000000000002, r = 0.2 WHERE id = 1")
    failed = ingest(env, source, "tamper.f", 4, *args)
    assert_clear_failure(failed, "column 'x': value checksum", "column 'r': value checksum", "nothing was published")
    assert query(dsn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'tamper'") == [(0,)]
