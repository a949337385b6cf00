"""PostgreSQL's text form of Arrow arrays: the CSV field of every value, "" for NULL (see ``mapping``).

Dates and timestamps outside the years 1-9999, which Arrow's text form does not cover, are written as
PostgreSQL prints them (``temporal``): 290000-12-30 23:00:00, 0044-03-15 BC.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from . import nested, temporal
from .mapping import Column, Kind


def text(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.string())


def _plain_decimal(values: pa.Array) -> pa.Array:
    """Decimals as PostgreSQL prints numeric(p, s): plain digits, never Arrow's 1E-10."""
    texts = text(values)
    if not pc.any(pc.match_substring(texts, "E")).as_py():
        return texts
    return pa.array([None if v is None else format(Decimal(v), "f") for v in texts.to_pylist()], pa.string())


def micros(values: pa.Array, unit: pa.DataType) -> pa.Array:
    """Timestamps or times as ``unit`` (a microsecond type; a zoned timestamp keeps its UTC instant)."""
    if values.type.unit == "ns":  # allowed by [export] truncate_nanoseconds: keep the microseconds, rounded down
        ns = values.cast(pa.int64())
        whole = pc.divide(ns, 1000)  # rounds towards zero: step back one where the remainder is negative
        whole = pc.subtract(whole, pc.cast(pc.less(pc.subtract(ns, pc.multiply(whole, 1000)), 0), pa.int64()))
        values = whole.cast(pa.timestamp("us", values.type.tz) if pa.types.is_timestamp(unit) else unit)
    return pc.cast(values, unit)


def days_or_micros(values: pa.Array) -> pa.Array:
    """Days (a date) or microseconds (a timestamp) since 1970 of every value, as int64 (NULL stays NULL)."""
    if pa.types.is_date(values.type):
        return values.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    return micros(values, pa.timestamp("us")).cast(pa.int64())


def _timestamp(values: pa.Array, unit: pa.DataType) -> pa.Array:
    """[YYYY-MM-DD ]HH:MM:SS[.ffffff without trailing zeros], as PostgreSQL prints a timestamp (in UTC)
    or a time of day; ``unit`` is the microsecond type the values are cast to first."""
    return pc.ascii_rtrim(pc.ascii_rtrim(text(micros(values, unit)), "0"), ".")


def _quoted(texts: pa.Array) -> pa.Array:
    """Text as a CSV field: always quoted, quotes doubled."""
    return pc.binary_join_element_wise('"', pc.replace_substring(texts, '"', '""'), '"', "")


def _outside_text_years(values: pa.Array, field: pa.Array, zone: str = "") -> pa.Array:
    """``field`` with the dates or timestamps outside the years 1-9999 written as PostgreSQL prints them."""
    per_day = 1 if pa.types.is_date(values.type) else temporal.DAY_MICROS
    low, high = temporal.YEAR_1_DAYS * per_day, temporal.YEAR_10000_DAYS * per_day
    keys = days_or_micros(values)
    extent = pc.min_max(keys)
    if extent["min"].as_py() is None or (extent["min"].as_py() >= low and extent["max"].as_py() < high):
        return field  # the common case: one pass, no values leave Arrow
    texts = field.to_pylist()
    for i, key in enumerate(keys.to_pylist()):
        if key is not None and not low <= key < high:
            texts[i] = temporal.date_text(key) if per_day == 1 else temporal.timestamp_text(key, zone=zone)
    return pa.array(texts, pa.string())


def csv_field(column: Column, values: pa.Array) -> pa.Array:
    """The value's CSV field: PostgreSQL's text form, "" for NULL (what the per-batch core, ``engines.core``,
    writes, whichever engine reads the rows)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if column.kind == Kind.TEXT:
        field = _quoted(text(values))
    elif column.kind == Kind.JSON:
        field = _quoted(nested.json_texts(values, column.name))
    elif column.kind == Kind.BYTEA:
        field = pa.array([None if v is None else "\\x" + v.hex() for v in values.to_pylist()], pa.string())
    elif column.kind == Kind.TIMESTAMP:
        field = _outside_text_years(values, _timestamp(values, pa.timestamp("us")))
    elif column.kind == Kind.TIMESTAMPTZ:
        field = _outside_text_years(values, pc.binary_join_element_wise(_timestamp(values, pa.timestamp("us")),
                                                                         "+00", ""), "+00")
    elif column.kind == Kind.DATE:
        field = _outside_text_years(values, text(values))
    elif column.kind == Kind.TIME:
        field = _timestamp(values, pa.time64("us"))
    elif pa.types.is_decimal(values.type):
        field = _plain_decimal(values)
    else:
        field = text(values)
    return pc.fill_null(field, "")
