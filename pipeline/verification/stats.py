"""Content verification: the same statistics computed on both sides of the load.

Source side: the engine computes them over the Parquet rows while it exports each chunk
(Spark: a ``DataFrame.observe`` on the export job; Arrow: per record batch; no second
read). PostgreSQL side: one SQL scan of the loaded rows. They compare:

* rows, and an order-independent checksum: the sum over rows of a row hash - any changed,
  lost or duplicated value changes it. The row hash is the engine's, named in the chunk
  manifest:
  - ``"md5"`` (Spark): MD5 (first 60 bits) of the row's CSV fields except floats (the
    "head" of the line, see ``typemap.csv_order``), the very string Spark writes;
    PostgreSQL rebuilds it from the loaded values in its own text output
    (``DateStyle=ISO``, ``TimeZone=UTC``, ``bytea_output=hex``, see ``CHECKSUMS``);
  - ``"typed"`` (Arrow): per column, PostgreSQL's own hash of the value as it stores it
    (``hashint8extended`` of a bigint, ``timestamp_hash_extended`` of a timestamp, ...;
    numerics, bytea and jsonb by their text), seeded with the column's position, XORed
    across the row (``TYPED_HASHES``, computed by ``pghash``). The server hashes values
    without printing them, about four times cheaper than rebuilding the text;
  - ``"hashtext"`` (loads exported by earlier versions): ``hashtextextended`` of the head.
* per column: the NULL count;
* per float column: NaN count, minimum, maximum and a checksum of the values themselves:
  the sum of PostgreSQL's ``hashfloat8extended(v, 0)`` (``pghash.float_hashes``; the Spark
  engine runs it in an Arrow UDF). Java and PostgreSQL print floats differently, so floats
  are hashed as the double's exact bits rather than as text.

The export also counts values it must refuse (``REFUSALS``): text or jsonb holding a NUL
byte, maps holding one key twice, dates before 4714-11-24 BC (PostgreSQL's first) - such a load is refused
before any row is copied.
"""

from __future__ import annotations

import math
from decimal import Decimal

from psycopg2 import sql

from . import temporal
from .errors import VerificationError
from .nested import DUPLICATE_KEY
from .typemap import Column, csv_order, is_float

SESSION_SETTINGS = "SET LOCAL DateStyle = ISO; SET LOCAL TimeZone = 'UTC'; SET LOCAL bytea_output = hex"


def _names(columns: list[Column]) -> list[str]:
    names = ["rows", "checksum"]
    for i, c in enumerate(columns):
        names += [f"nulls_{i}"] + ([f"nan_{i}", f"min_{i}", f"max_{i}", f"hash_{i}"] if is_float(c) else [])
    return names


# --- Spark side -------------------------------------------------------------------------------------------

def spark_canonical(column: Column, value):
    """The Spark expression giving PostgreSQL's text output for a value."""
    from pyspark.sql import functions as F

    if column.kind == "text":
        return value.cast("string")  # a column of Parquet's null type arrives as NULL integers
    if column.kind == "bytea":
        return F.concat(F.lit("\\x"), F.lower(F.hex(value)))
    if column.kind == "timestamptz":
        return _pg_years(value, value.cast("timestamp").cast("string"), "+00")
    if column.kind == "timestamp":
        return _pg_years(value, value.cast("timestamp_ntz").cast("string"))
    if column.kind == "date":
        return _pg_years(value, value.cast("string"))
    return value.cast("string")


def _pg_years(value, text, zone: str = ""):
    """A date's or timestamp's text (``text``, Spark's) as PostgreSQL prints it, also for the years outside
    1-9999 which Spark writes in its own way (+290000-12-30, 0000-01-01, -0043-03-15): PostgreSQL writes
    290000-12-30, 0001-01-01 BC, 0044-03-15 BC (see ``temporal``)."""
    from pyspark.sql import functions as F

    year = F.year(value)
    bc = year <= 0
    shown = F.format_string("%04d", F.when(bc, 1 - year).otherwise(year))
    rest = F.regexp_extract(text, r"^[+-]?[0-9]+(-.*)$", 1)
    outside = F.concat(shown, rest, F.lit(zone), F.when(bc, F.lit(" BC")).otherwise(F.lit("")))
    inside = F.concat(text, F.lit(zone)) if zone else text
    return F.when((year < 1) | (year > 9999), outside).otherwise(inside)


def spark_row_metrics(columns: list[Column]) -> list:
    """Per-row values the statistics sum up, computed where Spark compiles them (a projection) rather
    than inside ``observe``: ``_d`` the row's digest of the line's head ``_h``, ``_n<i>`` 1 when
    column i is NULL (its field ``_f<i>`` is empty exactly then), ``_z<i>`` 1 when a text value
    holds a NUL byte, ``_o<i>`` 1 when a date or timestamp lies outside PostgreSQL's range,
    ``_nan<i>`` a float column's NaN flag; ``_r<i>`` is the raw value of a float, date or timestamp."""
    from pyspark.sql import functions as F

    metrics = [F.conv(F.substring(F.md5(F.col("_h")), 1, 15), 16, 10).cast("decimal(38,0)").alias("_d")]
    for i, c in enumerate(columns):
        field = F.col(f"_f{i}")
        metrics.append((field == "").cast("long").alias(f"_n{i}"))
        if c.kind in TEXTUAL:
            metrics.append((F.instr(field, "\x00") > 0).cast("long").alias(f"_z{i}"))
        if c.kind == "json":
            metrics.append((F.instr(field, DUPLICATE_KEY) > 0).cast("long").alias(f"_u{i}"))
        if c.kind in DATED:
            metrics.append(_outside_postgres(c, F.col(f"_r{i}")).cast("long").alias(f"_o{i}"))
        if is_float(c):
            metrics += [F.isnan(F.col(f"_r{i}")).cast("long").alias(f"_nan{i}"), F.col(f"_r{i}"),
                        _spark_float_hash(F.col(f"_r{i}")).cast("decimal(38,0)").alias(f"_x{i}")]
    return metrics


def _outside_postgres(column: Column, value):
    """Whether a date or timestamp lies outside PostgreSQL's range (``arrow_export.outside_postgres``)."""
    from pyspark.sql import functions as F

    if column.kind == "date":
        days = F.unix_date(value)
        return (days < temporal.MIN_DAYS) | (days > temporal.MAX_DATE_DAYS)
    return F.unix_micros(value.cast("timestamp")) < F.lit(temporal.MIN_DAYS * temporal.DAY_MICROS)


def spark_aggregates(columns: list[Column]) -> list:
    """Aggregates for ``DataFrame.observe`` over the columns of ``spark_row_metrics``."""
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)), F.sum("_d")]
    for i, c in enumerate(columns):
        aggregates.append(F.sum(f"_n{i}"))
        if is_float(c):
            aggregates += [F.sum(f"_nan{i}"), F.min(f"_r{i}"), F.max(f"_r{i}"), F.sum(f"_x{i}")]
    named = [a.alias(n) for a, n in zip(aggregates, _names(columns), strict=True)]
    return (named + [F.sum(f"_z{i}").alias(f"nul_{i}") for i, c in enumerate(columns) if c.kind in TEXTUAL]
            + [F.sum(f"_o{i}").alias(f"oor_{i}") for i, c in enumerate(columns) if c.kind in DATED]
            + [F.sum(f"_u{i}").alias(f"dup_{i}") for i, c in enumerate(columns) if c.kind == "json"])


def _spark_float_hash(value):
    """``pghash.float_hashes`` of a float column, run in an Arrow UDF: Spark has no function PostgreSQL
    shares for hashing a double's exact bits."""
    from .pghash import float_hashes
    from .spark_export import arrow_udf_by_value

    return arrow_udf_by_value(float_hashes, "long")(value)


# Counted during the export: values the load refuses, and why (the chunk is named by the caller).
REFUSALS = {
    "nul": "with a NUL byte; PostgreSQL text and jsonb cannot store NUL",
    "oor": "outside PostgreSQL's range (from 4714-11-24 BC; dates to 5874897 AD)",
    "dup": "holding a map with one key twice; a jsonb object keeps only one",
}
DATED = ("date", "timestamp", "timestamptz")
TEXTUAL = ("text", "json")  # the kinds whose values may hold a NUL (``nested`` writes a NUL inside as it is)


def refusals(columns: list[Column], stats: dict) -> list[str]:
    """What a chunk's statistics say cannot be loaded: '<n> value(s) of column <c> <reason>' each."""
    return [f"{stats[f'{key}_{i}']:,} value(s) of column {c.name!r} {reason}"
            for key, reason in REFUSALS.items() for i, c in enumerate(columns) if stats.get(f"{key}_{i}")]


# --- PostgreSQL side --------------------------------------------------------------------------------------

def pg_field(column: Column) -> sql.Composed:
    """SQL giving the CSV field the export wrote for a non-float value."""
    ident = sql.Identifier(column.name)
    if column.kind in ("text", "json"):  # quoted; a jsonb value as jsonb prints it, which is what was written
        return sql.SQL("""CASE WHEN {c} IS NULL THEN '' ELSE '"' || replace({c}::text, '"', '""') || '"' END""").format(
            c=ident)
    return sql.SQL("coalesce({}::text, '')").format(ident)


# How PostgreSQL recomputes each engine's row hash of a line's head.
CHECKSUMS = {
    "md5": "('x' || substr(md5({}), 1, 15))::bit(60)::bigint",
    "hashtext": 'hashtextextended({} COLLATE "C", 0)',
}


def hash_kind(column: Column) -> str:
    """How the "typed" row hash hashes the column's values (see ``TYPED_HASHES``)."""
    if column.pg_type == "boolean":
        return "bool"
    if column.pg_type in ("smallint", "integer"):
        return "int4"
    if column.pg_type == "bigint":
        return "int8"
    if is_float(column):
        return "float"
    if column.kind in ("text", "date", "timestamp", "timestamptz", "time"):
        return column.kind
    return "field"  # numeric, bytea, jsonb: their CSV field, which is PostgreSQL's text form


# The "typed" row hash (the Arrow engine's, computed by ``pghash``): per column i, PostgreSQL's own hash
# of the value's binary form, seeded with i + 1, NULL as 0; XORed across the row. It spares the
# server printing every value as text.
TYPED_HASHES = {
    "bool": "hashint4extended({c}::int, {seed})",
    "int4": "hashint4extended({c}, {seed})",
    "int8": "hashint8extended({c}, {seed})",
    "float": "hashfloat8extended({c}::float8, {seed})",
    "text": 'hashtextextended({c} COLLATE "C", {seed})',
    "date": "hashint4extended({c} - date '2000-01-01', {seed})",
    "timestamp": "timestamp_hash_extended({c}, {seed})",
    "timestamptz": "timestamp_hash_extended({c}::timestamp, {seed})",  # the UTC wall-clock time
    "time": "time_hash_extended({c}, {seed})",
    "field": 'hashtextextended({field} COLLATE "C", {seed})',
}


def _typed_row_hash(columns: list[Column]) -> sql.Composed:
    parts = [sql.SQL("coalesce({}, 0)").format(sql.SQL(TYPED_HASHES[hash_kind(c)]).format(
        c=sql.Identifier(c.name), seed=sql.Literal(i + 1), field=pg_field(c))) for i, c in enumerate(columns)]
    return sql.SQL(" # ").join(parts)


def pg_stats_query(table: sql.Composable, columns: list[Column], checksum: str = "md5") -> sql.Composed:
    """One scan computing the same statistics over a loaded table."""
    if checksum == "typed":
        row = _typed_row_hash(columns)
    else:
        head = [pg_field(columns[i]) for i in csv_order(columns) if not is_float(columns[i])]
        line = sql.SQL("concat_ws(',', {})").format(sql.SQL(", ").join(head)) if head else sql.SQL("''")
        row = sql.SQL(CHECKSUMS[checksum]).format(line)
    items = [sql.SQL("count(*)"), sql.SQL("coalesce(sum({}), 0)").format(row)]
    for c in columns:
        ident = sql.Identifier(c.name)
        items.append(sql.SQL("count(*) - count({})").format(ident))
        if is_float(c):
            # min/max as float8: a real printed as text would come back as a different double
            items += [sql.SQL("count(*) FILTER (WHERE {} = 'NaN')").format(ident),
                      sql.SQL("min({})::float8").format(ident), sql.SQL("max({})::float8").format(ident),
                      sql.SQL("coalesce(sum(hashfloat8extended({}::float8, 0)), 0)").format(ident)]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def pg_stats(cur, table: sql.Composable, columns: list[Column], checksum: str = "md5") -> dict:
    cur.execute(SESSION_SETTINGS)
    if checksum != "md5" or any(is_float(c) for c in columns):
        _check_server_hash(cur)
    cur.execute(pg_stats_query(table, columns, checksum))
    return normalise(dict(zip(_names(columns), cur.fetchone(), strict=True)))


def pg_column_checksums(cur, table: sql.Composable, columns: list[Column]) -> dict[int, int]:
    """Per non-float column i: the sum of ``hashtextextended`` of its CSV field over the loaded rows."""
    cur.execute(SESSION_SETTINGS)
    _check_server_hash(cur)
    indexes = [i for i, c in enumerate(columns) if not is_float(c)]
    sums = [sql.SQL("coalesce(sum({}), 0)").format(sql.SQL(CHECKSUMS["hashtext"]).format(pg_field(columns[i])))
            for i in indexes]
    cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(sums), table))
    return {i: int(v) for i, v in zip(indexes, cur.fetchone(), strict=True)}


def _check_server_hash(cur) -> None:
    """The server computes ``hashtextextended`` as ``pghash`` does (a big-endian server would not)."""
    import pyarrow as pa

    from .pghash import float_hashes, hash_extended

    probe, number = "parquet-pg-pipeline, \"checksum\" probe: é😀", -1 / 3
    cur.execute('SELECT hashtextextended(%s COLLATE "C", 0), hashfloat8extended(%s, 0)', (probe, number))
    if cur.fetchone() != (int(hash_extended(pa.array([probe]))[0]), float_hashes(pa.array([number]))[0].as_py()):
        raise VerificationError("this PostgreSQL server hashes values differently from the pipeline's checksums, "
                                "so the load cannot be verified; a table without float columns can be loaded "
                                "with --export-engine spark")


# --- both -------------------------------------------------------------------------------------------------

def normalise(stats: dict) -> dict:
    """JSON-friendly values: integers as int, floats as float (None when there are no values)."""
    out = {}
    for key, value in stats.items():
        if value is None:
            out[key] = 0 if key.split("_")[0] in ("rows", "checksum", "nulls", "nan", "hash", *REFUSALS) else None
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
        for key in [k for k in source if k.rsplit("_", 1)[-1] == str(i) and k.split("_")[0] not in REFUSALS]:
            if not _same(source[key], loaded.get(key)):
                kind = key.split("_")[0]
                what = {"nulls": "NULL count", "nan": "NaN count", "hash": "value checksum"}.get(kind, kind)
                problems.append(f"column {c.name!r}: {what} {source[key]} in the source, {loaded.get(key)} loaded")
    if not problems and source["checksum"] != loaded["checksum"]:
        problems.append(CHECKSUM_ONLY)
    return problems


CHECKSUM_ONLY = "the row checksum differs (rows and every column's NULL count agree)"


def changed_columns(columns: list[Column], source: dict[int, int], loaded: dict[int, int]) -> str:
    """What per-column checksums say after ``CHECKSUM_ONLY``: which columns' values were changed."""
    names = [repr(columns[i].name) for i in source if source[i] != loaded.get(i)]
    if not names:
        return f"{CHECKSUM_ONLY}: values were changed, though no single column's checksum differs"
    return f"{CHECKSUM_ONLY}: values were changed in column{'s' if len(names) > 1 else ''} {', '.join(names)}"
