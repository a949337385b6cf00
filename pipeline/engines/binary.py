"""Chunk files in PostgreSQL's binary COPY format (``[export] chunk_format = binary``), encoded by pgpq.

Each column is cast to the Arrow type pgpq encodes as the column's PostgreSQL type's binary form: the
integer of the column's width, uint64 as numeric, decimals as numeric, text, bytea, dates, microsecond
times and timestamps (a zoned one in UTC: timestamptz's form), and a nested value as its jsonb text,
the very text its CSV field quotes (``types.nested``), sent as jsonb. The server then converts no text:
about half its work per row of a CSV COPY.
"""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ..types.mapping import Column, Kind, csv_order
from ..types.text import micros


def _binary_input(column: Column, values: pa.Array, field: pa.Array | None) -> pa.Array:
    """The column as the Arrow type pgpq encodes as the column's PostgreSQL binary form (``pg_type``)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if column.kind == Kind.JSON:  # jsonb's text: the CSV field without its quotes
        inner = pc.replace_substring(pc.binary_slice(field.cast(pa.binary()), 1, -1), b'""', b'"')
        return pc.if_else(values.is_null(), pa.scalar(None, pa.large_string()), inner.cast(pa.large_string()))
    if column.kind == Kind.TIME:
        return micros(values, pa.time64("us"))
    if column.kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        return micros(values, pa.timestamp("us", "UTC" if column.kind == Kind.TIMESTAMPTZ else None))
    return values.cast(_BINARY_TYPES[column.pg_type]) if column.pg_type in _BINARY_TYPES else values.cast(
        _binary_type(column, values.type))


_BINARY_TYPES = {"boolean": pa.bool_(), "smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64(),
                 "numeric(20)": pa.uint64(), "real": pa.float32(), "double precision": pa.float64(),
                 "text": pa.large_string(), "bytea": pa.large_binary(), "date": pa.date32()}


def _binary_type(column: Column, t: pa.DataType) -> pa.DataType:
    if pa.types.is_decimal(t):
        return pa.decimal128(t.precision, t.scale)
    raise TypeError(f"column {column.name!r} ({column.pg_type}) has no binary COPY encoding")


def encoder(schema: pa.Schema, jsonb: set[str]):
    """pgpq's encoder of batches of ``schema`` (``_binary_input``'s types), the columns named in ``jsonb`` (large
    strings) sent as jsonb."""
    from pgpq import ArrowToPostgresBinaryEncoder
    from pgpq.encoders import LargeStringEncoderBuilder
    from pgpq.schema import Jsonb

    return ArrowToPostgresBinaryEncoder.new_with_encoders(schema, {
        f.name: LargeStringEncoderBuilder.new_with_output(f, Jsonb()) if f.name in jsonb
        else ArrowToPostgresBinaryEncoder.infer_encoder(f) for f in schema})


class BinaryEncodingError(ValueError):
    """pgpq cannot encode a batch."""


class BinaryWriter:
    """PostgreSQL's binary COPY format, encoded by pgpq: its header, the rows of each batch, its trailer."""

    def __init__(self, columns: list[Column], out: BinaryIO):
        self.columns, self.out, self.encoder = columns, out, None
        self.order = csv_order(columns)  # the COPY's column list, as for CSV
        self.names = [columns[i].name for i in self.order]  # pgpq's encoders are looked up by name

    def write(self, batch: pa.RecordBatch, fields: list[pa.Array | None]) -> None:
        arrays = [_binary_input(self.columns[i], batch.column(i), fields[i]) for i in self.order]
        encoded = pa.RecordBatch.from_arrays(arrays, names=self.names)
        if self.encoder is None:
            self.encoder = encoder(encoded.schema, {self.columns[i].name for i in self.order
                                                    if self.columns[i].kind == Kind.JSON})
            self.out.write(self.encoder.write_header())
        try:
            self.out.write(self.encoder.write_batch(encoded))
        except ValueError as exc:  # pgpq's; the message names the column
            raise BinaryEncodingError(f"pgpq cannot write a batch in PostgreSQL's binary COPY format ({exc})") from exc

    def close(self) -> None:
        self.out.write(self.encoder.finish())
