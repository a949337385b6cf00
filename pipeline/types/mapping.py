"""Parquet (Arrow) column types -> PostgreSQL column types, and how each is written as CSV.

Every mapping is exact: a value survives the trip Parquet -> CSV -> PostgreSQL unchanged.
A type without an exact equivalent is refused before any row is written.

| Arrow type                         | PostgreSQL          | CSV form written by the export      |
|------------------------------------|---------------------|-------------------------------------|
| bool                               | boolean             | true / false                        |
| int8, int16, uint8                 | smallint            | decimal digits                      |
| int32, uint16                      | integer             | decimal digits                      |
| int64, uint32                      | bigint              | decimal digits                      |
| uint64                             | numeric(20)         | decimal digits                      |
| float16, float32                   | real                | shortest round-trip text, NaN, Infinity |
| float64                            | double precision    | shortest round-trip text, NaN, Infinity |
| decimal(p, s), p <= 38             | numeric(p, s)       | plain decimal text                  |
| string, large_string (dictionary)  | text                | always quoted, quotes doubled       |
| null (a column of NULLs only)      | text                | empty (NULL)                        |
| binary, large_binary, fixed binary | bytea               | \\x hex                             |
| date32, date64                     | date                | YYYY-MM-DD, as PostgreSQL prints it |
| timestamp[s/ms/us] (no zone)       | timestamp           | YYYY-MM-DD HH:MM:SS.ffffff          |
| timestamp[s/ms/us, tz]             | timestamptz         | the same in UTC, then +00           |

Years outside 1-9999 are written as PostgreSQL prints them (``290000-12-30``, ``0044-03-15 BC``, see
``temporal``); values outside PostgreSQL's own range (before 4714-11-24 BC, dates after 5874897 AD)
are refused.
| time32[s/ms], time64[us]           | time                | HH:MM:SS[.ffffff]                   |
| list, large_list, fixed_size_list  | jsonb               | jsonb's own text, quoted (``nested``) |
| struct, map                        | jsonb               | jsonb's own text, quoted (``nested``) |

Nanosecond timestamps and times are refused, or, with ``[export] truncate_nanoseconds``,
loaded with their microseconds (rounded down, as the digits are dropped).

INT96 timestamps reach this module as timestamp[us] (see ``source.footers._arrow_schema``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import pyarrow as pa

from ..errors import UnsupportedTypeError
from . import nested

MAX_IDENTIFIER = 63  # bytes in a PostgreSQL name (NAMEDATALEN - 1): a table's, a schema's, a column's


class Kind(StrEnum):
    """How a column's values are written as CSV (and checked): the PostgreSQL text form they take."""

    PLAIN = "plain"  # booleans and numbers: Arrow's text is PostgreSQL's
    TEXT = "text"
    JSON = "json"
    BYTEA = "bytea"
    DATE = "date"
    TIME = "time"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"

    @property
    def dated(self) -> bool:
        """A date or timestamp: its years may lie outside 1-9999, or outside PostgreSQL's range."""
        return self in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ)

    @property
    def textual(self) -> bool:
        """Text or jsonb: its values may hold a NUL (``nested`` writes a NUL inside as it is)."""
        return self in (Kind.TEXT, Kind.JSON)


class Column(NamedTuple):
    name: str
    arrow_type: str  # as Arrow prints it, for people; nothing parses it
    pg_type: str
    kind: Kind
    nanoseconds: bool = False  # timestamps or times of nanoseconds, loaded with their microseconds

    @property
    def is_float(self) -> bool:
        return self.pg_type in ("real", "double precision")

    @classmethod
    def from_json(cls, raw: list) -> Column:
        name, arrow_type, pg_type, kind, *rest = raw
        # plans written before the field existed (version 2 of the mapping) said it in the type only
        nanoseconds = rest[0] if rest else arrow_type.startswith(("timestamp[ns", "time64[ns"))
        return cls(name, arrow_type, pg_type, Kind(kind), nanoseconds)


def pg_column(name: str, arrow_type: pa.DataType, truncate_ns: bool = False) -> Column:
    """Map one Parquet column, or raise ``UnsupportedTypeError`` naming it. ``truncate_ns``: map
    nanosecond timestamps and times too, to be loaded with their microseconds only."""
    if not name or len(name.encode()) > MAX_IDENTIFIER or "\x00" in name:
        raise UnsupportedTypeError(f"column name {name!r} cannot be a PostgreSQL column name "
                                   f"(1 to {MAX_IDENTIFIER} bytes, no NUL)")
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    pg_type, kind = _map(t, name, truncate_ns)
    nanoseconds = (pa.types.is_time(t) or pa.types.is_timestamp(t)) and t.unit == "ns"
    return Column(name, str(arrow_type), pg_type, kind, nanoseconds)


def _map(t: pa.DataType, name: str, truncate_ns: bool) -> tuple[str, Kind]:
    if pa.types.is_boolean(t):
        return "boolean", Kind.PLAIN
    if pa.types.is_integer(t):
        signed = pa.types.is_signed_integer(t)
        width = t.bit_width + (0 if signed else 1)
        for bits, pg_type in ((16, "smallint"), (32, "integer"), (64, "bigint")):
            if width <= bits:
                return pg_type, Kind.PLAIN
        return "numeric(20)", Kind.PLAIN
    if pa.types.is_float16(t) or pa.types.is_float32(t):  # every half-precision float is exactly a float32
        return "real", Kind.PLAIN
    if pa.types.is_float64(t):
        return "double precision", Kind.PLAIN
    if pa.types.is_decimal(t) and t.precision <= 38:
        return f"numeric({t.precision},{t.scale})", Kind.PLAIN
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):  # null: a column of NULLs
        return "text", Kind.TEXT
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytea", Kind.BYTEA
    if pa.types.is_date(t):
        return "date", Kind.DATE
    if (pa.types.is_time(t) or pa.types.is_timestamp(t)) and t.unit == "ns" and not truncate_ns:
        raise UnsupportedTypeError(
            f"column {name!r} holds nanoseconds ({t}); PostgreSQL keeps microseconds, so loading it would drop "
            "digits - set [export] truncate_nanoseconds = true (--export-truncate-nanoseconds true) to load "
            "it with its microseconds")
    if pa.types.is_time(t):
        return "time", Kind.TIME
    if pa.types.is_timestamp(t):
        return ("timestamptz", Kind.TIMESTAMPTZ) if t.tz else ("timestamp", Kind.TIMESTAMP)
    if nested.is_nested(t):
        nested.check(name, t, lambda leaf: _map(leaf, name, truncate_ns))
        return "jsonb", Kind.JSON
    raise UnsupportedTypeError(f"column {name!r} has type {t}, which has no exact PostgreSQL mapping yet")


def csv_order(columns: list[Column]) -> list[int]:
    """The order of the columns in a CSV line: floats last, so the line without them - the part both
    Spark and PostgreSQL print identically - is a prefix the checksum can reuse (see ``verification.rowhash``)."""
    return [i for i, c in enumerate(columns) if not c.is_float] + [i for i, c in enumerate(columns) if c.is_float]
