"""Chunks in PostgreSQL's binary COPY format (``engines.binary``): the file's framing, and rows that decode back to
their values, read here with a small decoder of the format as PostgreSQL documents it (COPY, "Binary Format")."""

from __future__ import annotations

import datetime as dt
import io
import struct
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from pipeline.engines.binary import BinaryEncodingError, BinaryWriter
from pipeline.engines.core import write_batches
from pipeline.model.options import HIDDEN_FILE, HIDDEN_ROW, LoadOptions
from pipeline.model.plan import Plan, SourceFile
from pipeline.types.mapping import Column, pg_column
from pipeline.types.temporal import MIN_DAYS
from pipeline.types.text import csv_field

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + struct.pack(">ii", 0, 0)  # no flags (no OIDs), no header extension
TRAILER = struct.pack(">h", -1)
PG_EPOCH = dt.datetime(2000, 1, 1)

SCHEMA = pa.schema([("x", pa.float64()), ("id", pa.int32()), ("small", pa.int8()), ("big", pa.int64()),
                    ("huge", pa.uint64()), ("price", pa.decimal128(7, 2)), ("ok", pa.bool_()), ("name", pa.string()),
                    ("blob", pa.binary()), ("day", pa.date32()), ("at", pa.timestamp("us")),
                    ("at_tz", pa.timestamp("ms", "Europe/Paris")), ("clock", pa.time64("us")),
                    ("tags", pa.list_(pa.string())), ("f", pa.float32())])
ROWS = {
    "x": [1.5, -0.0], "id": [-7, 2**31 - 1], "small": [-128, 0], "big": [-2**63, 42], "huge": [2**64 - 1, 0],
    "price": [Decimal("-12345.67"), Decimal("0.50")], "ok": [True, False], "name": ['é"x', ""],
    "blob": [b"\x00\x01", b""], "day": [dt.date(2000, 1, 2), dt.date(1999, 12, 31)],
    "at": [dt.datetime(2000, 1, 1, 0, 0, 1), dt.datetime(1970, 1, 1, 0, 0, 0, 1)],
    "at_tz": [dt.datetime(2024, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")), dt.datetime(2000, 1, 1, tzinfo=dt.UTC)],
    "clock": [dt.time(0, 0, 1), dt.time(23, 59, 59, 999_999)], "tags": [['a"b', None], []], "f": [0.1, 3.0],
}


def _plan(columns: list[Column], budget: int | None = None) -> Plan:
    """A load of ``columns`` (with a bad-row ``budget``: they end with the hidden file and row columns)."""
    return Plan("load1", "shop.orders", "/data/orders", [SourceFile("a.parquet", 1, 1)], [2], columns, [[0]],
                options=LoadOptions(bad_rows=None if budget is None else (budget, 0)))


def _columns(schema: pa.Schema) -> list[Column]:
    return [pg_column(f.name, f.type) for f in schema]


def _batch(schema: pa.Schema, rows: dict) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({f.name: rows[f.name] for f in schema}, schema=schema)


def _written(columns: list[Column], batches: list[pa.RecordBatch]) -> bytes:
    """What the writer writes for ``batches``, each with its CSV fields (those of jsonb columns are its text)."""
    out = io.BytesIO()
    writer = BinaryWriter(columns, out)
    for batch in batches:
        writer.write(batch, [csv_field(c, batch.column(i)) for i, c in enumerate(columns)])
    writer.close()
    return out.getvalue()


def _tuples(data: bytes) -> list[list[bytes | None]]:
    """The rows of a binary COPY file, each field's raw bytes (None for NULL); checks the framing."""
    assert data[:len(HEADER)] == HEADER
    at, rows = len(HEADER), []
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            assert at == len(data), "bytes after the trailer"
            return rows
        row = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            row.append(None if length == -1 else data[at:at + length])
            at += max(length, 0)
        rows.append(row)


def _numeric(raw: bytes) -> Decimal:
    """numeric's binary form: digit count, weight, sign, display scale, then base-10000 digits."""
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHH", raw)
    digits = struct.unpack_from(f">{ndigits}H", raw, 8)
    value = sum((Decimal(d).scaleb(4 * (weight - i)) for i, d in enumerate(digits)), Decimal(0))
    return (-value if sign == 0x4000 else value).quantize(Decimal(1).scaleb(-dscale))


def _micros(raw: bytes) -> dt.timedelta:
    return dt.timedelta(microseconds=struct.unpack(">q", raw)[0])


DECODE = {
    "boolean": lambda raw: raw == b"\x01", "smallint": lambda raw: struct.unpack(">h", raw)[0],
    "integer": lambda raw: struct.unpack(">i", raw)[0], "bigint": lambda raw: struct.unpack(">q", raw)[0],
    "real": lambda raw: struct.unpack(">f", raw)[0], "double precision": lambda raw: struct.unpack(">d", raw)[0],
    "numeric(20)": _numeric, "numeric(7,2)": _numeric, "text": lambda raw: raw.decode(), "bytea": bytes,
    "date": lambda raw: PG_EPOCH.date() + dt.timedelta(days=struct.unpack(">i", raw)[0]),
    "timestamp": lambda raw: PG_EPOCH + _micros(raw),
    "timestamptz": lambda raw: PG_EPOCH.replace(tzinfo=dt.UTC) + _micros(raw),
    "time": lambda raw: (dt.datetime.min + _micros(raw)).time(),
    "jsonb": lambda raw: (raw[:1], raw[1:].decode()),  # a version byte, then jsonb's text
}


def _decoded(columns: list[Column], data: bytes) -> list[dict]:
    """Each row as {column: value}; fields come in the COPY's column order (``csv_order``: floats last)."""
    order = [c for c in columns if not c.is_float] + [c for c in columns if c.is_float]
    return [{c.name: None if raw is None else DECODE[c.pg_type](raw) for c, raw in zip(order, row, strict=True)}
            for row in _tuples(data)]


def test_the_file_has_postgres_binary_copy_signature_header_and_trailer():
    data = _written(_columns(SCHEMA), [_batch(SCHEMA, ROWS)])
    assert data.startswith(SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00") and data.endswith(b"\xff\xff")
    assert [len(row) for row in _tuples(data)] == [len(SCHEMA), len(SCHEMA)]


def test_rows_decode_back_to_their_values():
    columns = _columns(SCHEMA)
    first, second = _decoded(columns, _written(columns, [_batch(SCHEMA, ROWS)]))
    assert first == {
        "id": -7, "small": -128, "big": -2**63, "huge": 18446744073709551615, "price": Decimal("-12345.67"),
        "ok": True, "name": 'é"x', "blob": b"\x00\x01", "day": dt.date(2000, 1, 2),
        "at": dt.datetime(2000, 1, 1, 0, 0, 1), "at_tz": dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC),
        "clock": dt.time(0, 0, 1),
        "tags": (b"\x01", '["a\\"b", null]'),  # jsonb's text, the CSV field's without its quoting
        "x": 1.5, "f": struct.unpack(">f", struct.pack(">f", 0.1))[0]}
    assert second == {
        "id": 2**31 - 1, "small": 0, "big": 42, "huge": 0, "price": Decimal("0.50"), "ok": False, "name": "",
        "blob": b"", "day": dt.date(1999, 12, 31), "at": dt.datetime(1970, 1, 1, 0, 0, 0, 1),
        "at_tz": dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "clock": dt.time(23, 59, 59, 999_999), "tags": (b"\x01", "[]"),
        "x": -0.0, "f": 3.0}
    assert str(first["price"]) == "-12345.67" and str(second["price"]) == "0.50"  # the scale is kept
    assert struct.pack(">d", second["x"]) == struct.pack(">d", -0.0)


def test_floats_come_last_as_in_the_copys_column_list():
    columns = _columns(SCHEMA)
    first = _tuples(_written(columns, [_batch(SCHEMA, ROWS)]))[0]
    assert first[0] == struct.pack(">i", -7) and first[-2:] == [struct.pack(">d", 1.5), struct.pack(">f", 0.1)]


def test_nulls_have_length_minus_one_in_every_type():
    columns = _columns(SCHEMA)
    data = _written(columns, [_batch(SCHEMA, {name: [None] for name in ROWS})])
    assert _tuples(data) == [[None] * len(SCHEMA)]
    assert data == HEADER + struct.pack(">h", len(SCHEMA)) + struct.pack(">i", -1) * len(SCHEMA) + TRAILER


def test_batches_follow_one_header_and_precede_one_trailer():
    schema = pa.schema([("id", pa.int64()), ("name", pa.dictionary(pa.int32(), pa.string()))])
    columns = _columns(schema)
    batches = [_batch(schema, {"id": [], "name": []}), _batch(schema, {"id": [1, 2], "name": ["a", "b"]}),
               _batch(schema, {"id": [3], "name": ["a"]})]
    data = _written(columns, batches)
    assert data.count(SIGNATURE) == 1
    assert _decoded(columns, data) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "a"}]


@pytest.mark.parametrize("schema, rows", [
    (pa.schema([("id", pa.int32()), ("name", pa.string())]), {"id": [1, 2], "name": ["ok", "bad\x00"]}),
    (pa.schema([("id", pa.int32()), ("day", pa.date32())]), {"id": [1, 2], "day": [0, MIN_DAYS - 1]}),
    # a date pgpq itself cannot encode: refused before it is asked to
    (pa.schema([("id", pa.int32()), ("day", pa.date32())]), {"id": [1, 2], "day": [0, -2**31]}),
])
def test_a_batch_with_a_value_the_load_refuses_writes_no_rows_but_the_header_and_trailer(schema, rows):
    out = io.BytesIO()
    stats, bad = write_batches(_plan(_columns(schema)), [_batch(schema, rows)], out, binary=True)
    assert out.getvalue() == HEADER + TRAILER
    assert stats.rows == 2 and len(stats.refusals(_columns(schema))) == 1 and bad == []


def test_only_the_batch_with_a_refused_value_is_left_out():
    schema = pa.schema([("id", pa.int32()), ("name", pa.string())])
    batches = [_batch(schema, {"id": [1], "name": ["bad\x00"]}), _batch(schema, {"id": [2], "name": ["ok"]})]
    out = io.BytesIO()
    stats, _ = write_batches(_plan(_columns(schema)), batches, out, binary=True)
    assert _decoded(_columns(schema), out.getvalue()) == [{"id": 2, "name": "ok"}]
    assert stats.refusals(_columns(schema)) == [
        "1 value(s) of column 'name' with a NUL byte; PostgreSQL text and jsonb cannot store NUL"]


def test_a_value_pgpq_cannot_encode_raises_a_binary_encoding_error():
    schema = pa.schema([("day", pa.date32())])
    with pytest.raises(BinaryEncodingError, match=r"pgpq cannot write a batch in PostgreSQL's binary COPY format"):
        _written(_columns(schema), [_batch(schema, {"day": [-2**31]})])


def test_a_load_with_a_bad_row_budget_writes_csv_not_binary():
    columns = [pg_column("id", pa.int32()), pg_column(HIDDEN_FILE, pa.string()), pg_column(HIDDEN_ROW, pa.int64())]
    with pytest.raises(ValueError, match="a load with a bad-row budget writes CSV chunks"):
        write_batches(_plan(columns, budget=3), [], io.BytesIO(), binary=True)
