"""The Spark engine: one Spark session per process, and the CSV export of a chunk.

Every value is turned into its PostgreSQL text form by a Spark SQL expression chosen by
the column's kind (see ``typemap``), and each row into one CSV line that Spark writes with
its plain text writer. That sidesteps every lossy default of Spark's CSV writer (trimmed
spaces, millisecond timestamps, backslash escapes): non-null text is always quoted with
quotes doubled, NULL is an unquoted empty field, so PostgreSQL's ``FORMAT csv`` reads back
exactly what Parquet held.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
from pathlib import Path

from . import settings, verify
from .chunks import Chunk
from .errors import ExportError, UnsupportedTypeError
from .nested import json_texts
from .source import Plan
from .typemap import Column, csv_order, is_float

log = logging.getLogger(__name__)
_lock = threading.Lock()
_session = None
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def session():
    """The process's Spark session, started on first use and stopped at exit."""
    global _session
    with _lock:
        if _session is None:
            from pyspark.sql import SparkSession

            cfg = settings.spark()
            log.info("Starting Spark (master=%s)", cfg.master)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # runs the Arrow UDFs (arrow_udf_by_value)
            java_opts = f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}"
            builder = (
                SparkSession.builder.master(cfg.master)
                .appName("parquet-pg-pipeline")
                .config("spark.driver.memory", cfg.driver_memory)
                .config("spark.driver.extraJavaOptions", java_opts)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.caseSensitive", "true")  # "A" and "a" are two PostgreSQL columns
                .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
                .config("spark.sql.timeType.enabled", "true")  # Parquet TIME(MICROS) columns
                .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # see source_value
                # Dates and timestamps are proleptic Gregorian in Arrow and PostgreSQL: never "rebase" them.
                .config("spark.sql.parquet.datetimeRebaseModeInRead", "CORRECTED")
                .config("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED")
                .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000000")
                .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
            )
            try:
                _session = builder.getOrCreate()
            except Exception as exc:
                raise ExportError(f"Spark could not start (master {cfg.master}): {exc}") from exc
            atexit.register(_session.stop)
        return _session


def _col(name: str):
    from pyspark.sql import functions as F

    return F.col(_quoted(name))


def _quoted(name: str) -> str:
    """A column name as Spark SQL reads it literally."""
    return "`" + name.replace("`", "``") + "`"


def source_value(column: Column):
    """The column as a Spark value of its type. Nanosecond timestamps (allowed by [export]
    truncate_nanoseconds) arrive as longs (spark.sql.legacy.parquet.nanosAsLong): their
    microseconds, rounded down, as a timestamp."""
    from pyspark.sql import functions as F

    if not column.arrow_type.startswith("timestamp[ns"):
        return _col(column.name)
    quoted = _quoted(column.name)
    return F.timestamp_micros(F.expr(f"({quoted} - pmod({quoted}, 1000)) div 1000"))


def arrow_udf_by_value(function, return_type: str, *args):
    """``function(array, *args) -> array`` as a Spark Arrow UDF. Its module is shipped by value, so the
    Python workers beside the executors import pyarrow and numpy but not this package: they stay
    small, and a cluster's workers need only pyspark, pyarrow and numpy."""
    from pyspark import cloudpickle
    from pyspark.sql.functions import arrow_udf

    cloudpickle.register_pickle_by_value(sys.modules[function.__module__])
    return arrow_udf(lambda values: function(values, *args), return_type)


def json_text(column: Column, value):
    """A nested value's jsonb text, made by ``nested.json_texts`` - the Arrow engine's own code."""
    return arrow_udf_by_value(json_texts, "string", column.name)(value)


def csv_value(column: Column):
    """A Spark expression giving the column's CSV field: never null, PostgreSQL's text form."""
    from pyspark.sql import functions as F

    c = source_value(column)
    value = json_text(column, c) if column.kind == "json" else verify.spark_canonical(column, c)
    if column.kind in ("text", "json"):
        value = F.concat(F.lit('"'), F.replace(value, F.lit('"'), F.lit('""')), F.lit('"'))
    return F.when(c.isNull(), F.lit("")).otherwise(value)


def csv_frame(frame, columns: list[Column], observation):
    """``frame`` as one CSV line per row (column ``value``, fields in ``csv_order``), observing the
    source statistics of ``verify`` on the way."""
    from pyspark.sql import functions as F

    order = csv_order(columns)
    fields = frame.select(*[csv_value(c).alias(f"_f{i}") for i, c in enumerate(columns)],
                          *[source_value(c).alias(f"_r{i}") for i, c in enumerate(columns)
                            if is_float(c) or c.kind in verify.DATED])
    head = [F.col(f"_f{i}") for i in order if not is_float(columns[i])]
    tail = [F.col(f"_f{i}") for i in order if is_float(columns[i])]
    lined = fields.select("*", (F.concat_ws(",", *head) if head else F.lit("")).alias("_h"))
    line = F.concat_ws(",", *([F.col("_h")] if head else []), *tail) if tail else F.col("_h")
    measured = lined.select(line.alias("value"), *verify.spark_row_metrics(columns))
    return measured.observe(observation, *verify.spark_aggregates(columns)).select("value")


CHECKSUM = "md5"  # the row hash of the checksum (see verify.CHECKSUMS)
_GLOB = re.compile(r"([\\*?\[\]{}])")


def _hadoop_path(path: str) -> str:
    """A local path as Hadoop reads it literally (no globbing)."""
    return "file://" + _GLOB.sub(r"\\\1", path)


_UNREADABLE = re.compile(r"(?:^|[<:,] ?)(time32(?=\[)|time64\[ns\])")


def check(columns: list[Column]) -> None:
    """Refuse, before any row is written, the columns Spark cannot read."""
    for c in columns:
        found = _UNREADABLE.search(c.arrow_type)  # also inside a list, struct or map
        if found:
            unit = "milliseconds" if found.group(1) == "time32" else "nanoseconds"
            raise UnsupportedTypeError(f"column {c.name!r} holds times of day in {unit} ({c.arrow_type}), "
                                       "which Spark cannot read; load it with --export-engine arrow")


def export_chunk(plan: Plan, index: int, folder: Path) -> dict:
    """Write chunk ``index`` of ``plan`` as CSV part files in ``folder``; return the source statistics
    (see ``verify``) Spark observed during the write."""
    from pyspark.sql import Observation

    spark = session()
    chunk = Chunk(plan.load_id, index)
    paths = [_hadoop_path(p) for p in plan.chunk_paths(index)]
    observation = Observation(f"chunk{index}")
    spark.sparkContext.setJobDescription(f"{plan.table} {chunk.dirname}")
    try:
        frame = csv_frame(spark.read.parquet(*paths), plan.columns, observation)
        frame.write.option("compression", "none").text(str(folder))
        return verify.normalise(observation.get)
    except Exception as exc:
        raise ExportError(f"Spark failed to export {chunk} of {plan.table} (source {plan.describe_chunk(index)}): "
                          f"{_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    refused = re.search(r"NestedValueError: (.*)", text)  # a value json_text's UDF cannot read
    if refused:
        return refused.group(1)[:500]
    return text.split("\n", 1)[0][:500] if text else type(exc).__name__
