"""Content verification: the same statistics computed on both sides of the load.

Source side: Spark computes them over the Parquet rows while it exports each chunk (a
``DataFrame.observe`` on the export job, so no second read). PostgreSQL side: one SQL scan
of the loaded rows. Both work on one canonical text form per value - PostgreSQL's own
output form (``DateStyle=ISO``, ``TimeZone=UTC``, ``bytea_output=hex``) - and compare:

* rows, and an order-independent checksum: the sum over rows of the first 60 bits of the
  MD5 of the row's canonical values (floats excepted, see below) - any changed, lost or
  duplicated value changes it;
* per column: the NULL count, and the total length of the canonical text (names the
  column when a value changed length or went missing);
* per float column: NaN count, minimum and maximum. Java and PostgreSQL print floats
  differently, so float values are not part of the row checksum.

The export also counts, per text column, values holding a NUL byte - PostgreSQL text
cannot store one, so such a load is refused before any row is copied.
"""

from __future__ import annotations

import math
from decimal import Decimal

from psycopg2 import sql

from .typemap import Column

SEPARATOR = "\x1f"
NULL_MARK = "\x1e"
SESSION_SETTINGS = "SET LOCAL DateStyle = ISO; SET LOCAL TimeZone = 'UTC'; SET LOCAL bytea_output = hex"


def is_float(column: Column) -> bool:
    return column.pg_type in ("real", "double precision")


def _names(columns: list[Column]) -> list[str]:
    names = ["rows", "checksum"]
    for i, c in enumerate(columns):
        names += [f"nulls_{i}"] + ([f"nan_{i}", f"min_{i}", f"max_{i}"] if is_float(c) else [f"length_{i}"])
    return names


# --- Spark side -------------------------------------------------------------------------------------------

def spark_canonical(column: Column, value):
    """The Spark expression giving PostgreSQL's text output for a non-float value."""
    from pyspark.sql import functions as F

    if column.kind == "text":
        return value
    if column.kind == "bytea":
        return F.concat(F.lit("\\x"), F.lower(F.hex(value)))
    if column.kind == "timestamptz":
        return F.concat(value.cast("timestamp").cast("string"), F.lit("+00"))
    if column.kind == "timestamp":
        return value.cast("timestamp_ntz").cast("string")
    return value.cast("string")


def spark_aggregates(columns: list[Column], col) -> list:
    """Aggregate expressions for ``DataFrame.observe``; ``col(name)`` references a column."""
    from pyspark.sql import functions as F

    canonical = {i: spark_canonical(c, col(c.name)) for i, c in enumerate(columns) if not is_float(c)}
    row = F.concat_ws(SEPARATOR, *[F.coalesce(v, F.lit(NULL_MARK)) for v in canonical.values()])
    digest = F.conv(F.substring(F.md5(row), 1, 15), 16, 10).cast("decimal(38,0)")
    aggregates = [F.count(F.lit(1)), F.sum(digest)]
    for i, c in enumerate(columns):
        value = col(c.name)
        aggregates.append(F.sum(F.when(value.isNull(), 1).otherwise(0)))
        if is_float(c):
            aggregates += [F.sum(F.when(F.isnan(value), 1).otherwise(0)), F.min(value), F.max(value)]
        else:
            aggregates.append(F.sum(F.length(canonical[i]).cast("long")))
    named = [a.alias(n) for a, n in zip(aggregates, _names(columns), strict=True)]
    nuls = [F.sum(F.when(F.instr(col(c.name), "\x00") > 0, 1).otherwise(0)).alias(f"nul_{i}")
            for i, c in enumerate(columns) if c.kind == "text"]
    return named + nuls


def nul_columns(columns: list[Column], stats: dict) -> list[tuple[str, int]]:
    """(column, values) of the text columns whose values hold a NUL byte, which PostgreSQL text cannot store."""
    return [(c.name, stats[f"nul_{i}"]) for i, c in enumerate(columns) if stats.get(f"nul_{i}")]


# --- PostgreSQL side --------------------------------------------------------------------------------------

def pg_stats_query(table: sql.Composable, columns: list[Column]) -> sql.Composed:
    """One scan computing the same statistics over a loaded table."""
    texts = {i: sql.SQL("{}::text").format(sql.Identifier(c.name)) for i, c in enumerate(columns) if not is_float(c)}
    row = sql.SQL("concat_ws({}, {})").format(
        sql.Literal(SEPARATOR),
        sql.SQL(", ").join(sql.SQL("coalesce({}, {})").format(t, sql.Literal(NULL_MARK)) for t in texts.values()))
    items = [sql.SQL("count(*)"),
             sql.SQL("coalesce(sum(('x' || substr(md5({}), 1, 15))::bit(60)::bigint), 0)").format(row)]
    for i, c in enumerate(columns):
        ident = sql.Identifier(c.name)
        items.append(sql.SQL("count(*) - count({})").format(ident))
        if is_float(c):
            items += [sql.SQL("count(*) FILTER (WHERE {} = 'NaN')").format(ident),
                      sql.SQL("min({})").format(ident), sql.SQL("max({})").format(ident)]
        else:
            items.append(sql.SQL("coalesce(sum(length({})), 0)").format(texts[i]))
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def pg_stats(cur, table: sql.Composable, columns: list[Column]) -> dict:
    cur.execute(SESSION_SETTINGS)
    cur.execute(pg_stats_query(table, columns))
    return normalise(dict(zip(_names(columns), cur.fetchone(), strict=True)))


# --- both -------------------------------------------------------------------------------------------------

def normalise(stats: dict) -> dict:
    """JSON-friendly values: integers as int, floats as float (None when there are no values)."""
    out = {}
    for key, value in stats.items():
        if value is None:
            out[key] = 0 if key.split("_")[0] in ("rows", "checksum", "nulls", "nan", "length", "nul") else None
        elif isinstance(value, (int, Decimal)) and key.split("_")[0] not in ("min", "max"):
            out[key] = int(value)
        else:
            out[key] = float(value)
    return out


def combine(parts: list[dict]) -> dict:
    """The statistics of a whole load from those of its chunks."""
    total: dict = {}
    for part in parts:
        for key, value in part.items():
            kind = key.split("_")[0]
            old = total.get(key)
            if kind in ("min", "max"):
                if value is None or (old is not None and not _better(kind, value, old)):
                    continue
                total[key] = value
            else:
                total[key] = (old or 0) + value
    return total


def _better(kind: str, value: float, old: float) -> bool:
    def order(x: float) -> tuple[bool, float]:  # NaN sorts above every number, as in Spark and PostgreSQL
        return (math.isnan(x), 0.0 if math.isnan(x) else x)

    return order(value) < order(old) if kind == "min" else order(value) > order(old)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def differences(columns: list[Column], source: dict, loaded: dict) -> list[str]:
    """Human-readable differences between the source and the loaded statistics."""
    problems = []
    for i, c in enumerate(columns):
        for key in [k for k in source if k.rsplit("_", 1)[-1] == str(i) and not k.startswith("nul_")]:
            if not _same(source[key], loaded.get(key)):
                what = key.split("_")[0].replace("length", "text length").replace("nulls", "NULL count")
                problems.append(f"column {c.name!r}: {what} {source[key]} in the source, {loaded.get(key)} loaded")
    if not problems and source["checksum"] != loaded["checksum"]:
        problems.append("the row checksum differs (every column's NULL count and text length agree: "
                        "values were changed, not lost)")
    return problems
