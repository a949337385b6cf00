"""The row hashes a checksum can sum (the chunk manifest names the one its statistics use).

* ``md5`` (the Spark engine's before it ran the per-batch core; its loads still verify): MD5 (first
  60 bits) of the row's CSV fields except floats (the "head" of the line, see ``types.mapping.csv_order``),
  the very string Spark wrote; PostgreSQL rebuilds it from the loaded values in its own text output
  (``DateStyle=ISO``, ``TimeZone=UTC``, ``bytea_output=hex``);
* ``typed`` (both engines', computed by their per-batch core): per column, PostgreSQL's own hash of the
  value as it stores it (``hashint8extended`` of a bigint, ``timestamp_hash_extended`` of a timestamp,
  ...; numerics, bytea and jsonb by their text), seeded with the column's position, XORed across the row
  (``HashKind``, computed by ``pghash``). The server hashes values without printing them, about four
  times cheaper than rebuilding the text;
* ``hashtext`` (loads exported by earlier versions): ``hashtextextended`` of the head.
"""

from __future__ import annotations

from enum import StrEnum

from ..types.mapping import Column, Kind


class Checksum(StrEnum):
    MD5 = "md5"
    TYPED = "typed"
    HASHTEXT = "hashtext"


class HashKind(StrEnum):
    """How the ``typed`` row hash hashes a column's values: by the binary form PostgreSQL stores."""

    BOOL = "bool"
    INT4 = "int4"
    INT8 = "int8"
    FLOAT = "float"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    TIME = "time"
    FIELD = "field"  # numeric, bytea, jsonb: their CSV field, which is PostgreSQL's text form


def hash_kind(column: Column) -> HashKind:
    if column.pg_type == "boolean":
        return HashKind.BOOL
    if column.pg_type in ("smallint", "integer"):
        return HashKind.INT4
    if column.pg_type == "bigint":
        return HashKind.INT8
    if column.is_float:
        return HashKind.FLOAT
    if column.kind in (Kind.TEXT, Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.TIME):
        return HashKind(column.kind.value)
    return HashKind.FIELD
