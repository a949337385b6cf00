"""Spark SQL expressions giving PostgreSQL's text form of a value: the Spark engine's CSV fields (the
Spark twin of ``types.text``)."""

from __future__ import annotations

from ..types.mapping import Column, Kind
from ..types.nested import json_texts
from .spark_session import arrow_udf_by_value


def col(name: str):
    from pyspark.sql import functions as F

    return F.col(quoted(name))


def quoted(name: str) -> str:
    """A column name as Spark SQL reads it literally."""
    return "`" + name.replace("`", "``") + "`"


def source_value(column: Column):
    """The column as a Spark value of its type. Nanosecond timestamps (allowed by [export]
    truncate_nanoseconds) arrive as longs (spark.sql.legacy.parquet.nanosAsLong): their
    microseconds, rounded down, as a timestamp."""
    from pyspark.sql import functions as F

    if not (column.nanoseconds and column.kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ)):
        return col(column.name)
    name = quoted(column.name)
    return F.timestamp_micros(F.expr(f"({name} - pmod({name}, 1000)) div 1000"))


def canonical(column: Column, value):
    """The Spark expression giving PostgreSQL's text output for a non-nested value."""
    from pyspark.sql import functions as F

    if column.kind == Kind.TEXT:
        return value.cast("string")  # a column of Parquet's null type arrives as NULL integers
    if column.kind == Kind.BYTEA:
        return F.concat(F.lit("\\x"), F.lower(F.hex(value)))
    if column.kind == Kind.TIMESTAMPTZ:
        return _pg_years(value, value.cast("timestamp").cast("string"), "+00")
    if column.kind == Kind.TIMESTAMP:
        return _pg_years(value, value.cast("timestamp_ntz").cast("string"))
    if column.kind == Kind.DATE:
        return _pg_years(value, value.cast("string"))
    return value.cast("string")


def _pg_years(value, text, zone: str = ""):
    """A date's or timestamp's text (``text``, Spark's) as PostgreSQL prints it, also for the years outside
    1-9999 which Spark writes in its own way (+290000-12-30, 0000-01-01, -0043-03-15): PostgreSQL writes
    290000-12-30, 0001-01-01 BC, 0044-03-15 BC (see ``types.temporal``)."""
    from pyspark.sql import functions as F

    year = F.year(value)
    bc = year <= 0
    shown = F.format_string("%04d", F.when(bc, 1 - year).otherwise(year))
    rest = F.regexp_extract(text, r"^[+-]?[0-9]+(-.*)$", 1)
    outside = F.concat(shown, rest, F.lit(zone), F.when(bc, F.lit(" BC")).otherwise(F.lit("")))
    inside = F.concat(text, F.lit(zone)) if zone else text
    return F.when((year < 1) | (year > 9999), outside).otherwise(inside)


def json_text(column: Column, value):
    """A nested value's jsonb text, made by ``nested.json_texts`` - the Arrow engine's own code."""
    return arrow_udf_by_value(json_texts, "string", column.name)(value)


def csv_value(column: Column):
    """A Spark expression giving the column's CSV field: never null, PostgreSQL's text form."""
    from pyspark.sql import functions as F

    c = source_value(column)
    value = json_text(column, c) if column.kind == Kind.JSON else canonical(column, c)
    if column.kind.textual:
        value = F.concat(F.lit('"'), F.replace(value, F.lit('"'), F.lit('""')), F.lit('"'))
    return F.when(c.isNull(), F.lit("")).otherwise(value)
