"""The source statistics (``verification.stats``) of a chunk the Spark engine exports, observed on the
export job itself (``DataFrame.observe``), so the source is read once. Row hash: "md5" (``rowhash``)."""

from __future__ import annotations

from ..types import temporal
from ..types.mapping import Column, Kind
from ..types.nested import DUPLICATE_KEY
from ..verification.pghash import float_hashes
from ..verification.stats import Refusal, Stats, counted_refusals
from .spark_session import arrow_udf_by_value


def row_metrics(columns: list[Column]) -> list:
    """Per-row values the statistics sum up, computed where Spark compiles them (a projection) rather
    than inside ``observe``: ``_d`` the row's digest of the line's head ``_h``, ``_n<i>`` 1 when
    column i is NULL (its field ``_f<i>`` is empty exactly then), ``_<refusal><i>`` 1 when the value is
    one the load refuses, ``_nan<i>`` a float column's NaN flag; ``_r<i>`` is the raw value of a float,
    date or timestamp."""
    from pyspark.sql import functions as F

    metrics = [F.conv(F.substring(F.md5(F.col("_h")), 1, 15), 16, 10).cast("decimal(38,0)").alias("_d")]
    for i, c in enumerate(columns):
        field = F.col(f"_f{i}")
        metrics.append((field == "").cast("long").alias(f"_n{i}"))
        metrics += [_refused(r, c, i).cast("long").alias(f"_{r.value}{i}") for r in counted_refusals(c)]
        if c.is_float:
            metrics += [F.isnan(F.col(f"_r{i}")).cast("long").alias(f"_nan{i}"), F.col(f"_r{i}"),
                        arrow_udf_by_value(float_hashes, "long")(F.col(f"_r{i}")).cast("decimal(38,0)")
                        .alias(f"_x{i}")]
    return metrics


def _refused(refusal: Refusal, column: Column, i: int):
    """Whether the value of column ``i`` is one the load refuses for ``refusal``."""
    from pyspark.sql import functions as F

    if refusal == Refusal.NUL:
        return F.instr(F.col(f"_f{i}"), "\x00") > 0
    if refusal == Refusal.DUPLICATE_KEY:
        return F.instr(F.col(f"_f{i}"), DUPLICATE_KEY) > 0
    return _outside_postgres(column, F.col(f"_r{i}"))


def _outside_postgres(column: Column, value):
    """Whether a date or timestamp lies outside PostgreSQL's range (``verification.batch.outside_postgres``)."""
    from pyspark.sql import functions as F

    if column.kind == Kind.DATE:
        days = F.unix_date(value)
        return (days < temporal.MIN_DAYS) | (days > temporal.MAX_DATE_DAYS)
    return F.unix_micros(value.cast("timestamp")) < F.lit(temporal.MIN_DAYS * temporal.DAY_MICROS)


def aggregates(columns: list[Column]) -> list:
    """Aggregates for ``DataFrame.observe`` over the columns of ``row_metrics``, in ``Stats.from_values``
    order (read back by ``observed``)."""
    from pyspark.sql import functions as F

    out = [F.count(F.lit(1)), F.sum("_d")]
    for i, c in enumerate(columns):
        out.append(F.sum(f"_n{i}"))
        if c.is_float:
            out += [F.sum(f"_nan{i}"), F.min(f"_r{i}"), F.max(f"_r{i}"), F.sum(f"_x{i}")]
    out += [F.sum(f"_{r.value}{i}") for i, c in enumerate(columns) for r in counted_refusals(c)]
    return [a.alias(f"_s{k}") for k, a in enumerate(out)]


def observed(columns: list[Column], values: dict) -> Stats:
    """The statistics from an observation of ``aggregates`` (its values in their order)."""
    return Stats.from_values(columns, [values[f"_s{k}"] for k in range(len(values)) if f"_s{k}" in values])
