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
import shutil
import sys
import threading
from pathlib import Path

from . import settings, verify
from .chunks import Chunk
from .errors import ExportError
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
                # parquet-mr checks the CRC of every page that carries one: a corrupt page fails the read
                .config("spark.hadoop.parquet.page.verify-checksum.enabled",
                        str(settings.export().verify_page_checksums).lower())
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

    from . import temporal

    for module in (sys.modules[function.__module__], temporal):  # temporal: what nested writes dates with
        cloudpickle.register_pickle_by_value(module)
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


def _entry_counters(dtype) -> list:
    """Per Parquet leaf of a Spark type, depth first: a function giving the level entries the leaf stores
    for a value - one for a NULL or empty list or map and for each of their items, recursively."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StructType

    def over(items, inner):  # the entries of a list's (or a map's keys' or values') items
        return lambda v: F.when(v.isNull() | (F.size(v) == 0), F.lit(1)).otherwise(
            F.aggregate(F.transform(items(v), lambda x: inner(x)), F.lit(0), lambda a, b: a + b))

    if isinstance(dtype, StructType):
        return [lambda v, g=g, n=f.name: F.when(v.isNull(), F.lit(1)).otherwise(g(v.getField(n)))
                for f in dtype.fields for g in _entry_counters(f.dataType)]
    if isinstance(dtype, ArrayType):
        return [over(lambda v: v, g) for g in _entry_counters(dtype.elementType)]
    if isinstance(dtype, MapType):
        return ([over(F.map_keys, g) for g in _entry_counters(dtype.keyType)]
                + [over(F.map_values, g) for g in _entry_counters(dtype.valueType)])
    return [lambda v: F.lit(1)]


def leaf_entries(frame, columns: list[Column], leaves: list[int]) -> list:
    """Per repeated leaf (``Plan.repeated_leaves``): a column counting the level entries Spark read for it
    in the row, to compare with the footers' counts (parquet-mr does not check repetition levels)."""
    counters = [(c.name, g) for c in columns for g in _entry_counters(frame.schema[c.name].dataType)]
    return [counters[leaf][1](_col(counters[leaf][0])).alias(f"_l{k}") for k, leaf in enumerate(leaves)]


def csv_frame(frame, columns: list[Column], observation, leaves: list[int] = ()):
    """``frame`` as one CSV line per row (column ``value``, fields in ``csv_order``), observing the
    source statistics of ``verify`` on the way, and the level entries of the ``leaves`` (``leaves_<k>``)."""
    from pyspark.sql import functions as F

    order = csv_order(columns)
    fields = frame.select(*[csv_value(c).alias(f"_f{i}") for i, c in enumerate(columns)],
                          *[source_value(c).alias(f"_r{i}") for i, c in enumerate(columns)
                            if is_float(c) or c.kind in verify.DATED],
                          *leaf_entries(frame, columns, list(leaves)))
    head = [F.col(f"_f{i}") for i in order if not is_float(columns[i])]
    tail = [F.col(f"_f{i}") for i in order if is_float(columns[i])]
    lined = fields.select("*", (F.concat_ws(",", *head) if head else F.lit("")).alias("_h"))
    line = F.concat_ws(",", *([F.col("_h")] if head else []), *tail) if tail else F.col("_h")
    measured = lined.select(line.alias("value"), *verify.spark_row_metrics(columns),
                            *[F.col(f"_l{k}") for k in range(len(leaves))])
    entries = [F.sum(f"_l{k}").alias(f"leaves_{k}") for k in range(len(leaves))]
    return measured.observe(observation, *verify.spark_aggregates(columns), *entries).select("value")


CHECKSUM = "md5"  # the row hash of the checksum (see verify.CHECKSUMS)
_GLOB = re.compile(r"([\\*?\[\]{}])")


def _hadoop_path(path: str) -> str:
    """A local path as Hadoop reads it literally (no globbing)."""
    return "file://" + _GLOB.sub(r"\\\1", path)


# Spark failing to read a source file (rather than to run or to write): its own error conditions, and
# the words of the parquet-mr schema converter, which raises without one.
_READ_FAILURES = ("FAILED_READ_FILE", "PARQUET_TYPE_ILLEGAL", "PARQUET_TYPE_NOT_SUPPORTED",
                  "PARQUET_TYPE_NOT_RECOGNIZED", "Illegal Parquet type", "Invalid map type")


def _read_failure(exc: Exception) -> str | None:
    """Spark's reason when ``exc`` says its Parquet reader could not read a source file, else None."""
    text = str(exc)
    if not any(marker in text for marker in _READ_FAILURES):
        return None
    causes = re.findall(r"Caused by: ([\w.$]+(?:: [^\n]*)?)", text)
    return (causes[-1] if causes else _first_line(exc))[:300]


def export_chunk(plan: Plan, index: int, folder: Path) -> dict:
    """Write chunk ``index`` of ``plan`` as CSV part files in ``folder``; return the source statistics
    (see ``verify``) Spark observed during the write.

    Where Spark's Parquet reader cannot read the chunk's files - it fails on them, or reads other rows or
    other list and map entries than their footers count - the chunk is written by pyarrow instead, with the
    same row hash (see ``_with_arrow``); a file pyarrow cannot read either is refused naming it."""
    from pyspark.sql import Observation

    spark = session()
    chunk = Chunk(plan.load_id, index)
    paths = [_hadoop_path(p) for p in plan.chunk_paths(index)]
    observation = Observation(f"chunk{index}")
    spark.sparkContext.setJobDescription(f"{plan.table} {chunk.dirname}")
    try:
        frame = csv_frame(spark.read.parquet(*paths), plan.columns, observation, plan.repeated_leaves)
        frame.write.option("compression", "none").text(str(folder))
        stats = verify.normalise(observation.get)
        entries = [stats.pop(f"leaves_{k}") or 0 for k in range(len(plan.repeated_leaves))]
    except Exception as exc:
        reason = _read_failure(exc)
        if reason is None:
            raise ExportError(f"Spark failed to export {chunk} of {plan.table} (source "
                              f"{plan.describe_chunk(index)}): {_first_line(exc)}") from exc
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader cannot read it ({reason})")
    if stats["rows"] != plan.chunk_rows(index):
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader read {stats['rows']:,} rows where the "
                                                f"footers count {plan.chunk_rows(index):,}")
    if entries != plan.chunk_leaf_entries(index):
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader read {sum(entries):,} list or map entries "
                                                f"where the footers count {sum(plan.chunk_leaf_entries(index)):,}")
    return stats


def _with_arrow(plan: Plan, index: int, folder: Path, reason: str) -> dict:
    """Export the chunk with pyarrow, computing the Spark engine's row hash, after Spark could not read it."""
    from . import arrow_export

    log.warning("%s: %s (source %s): %s; pyarrow exports it instead", plan.table, Chunk(plan.load_id, index),
                plan.describe_chunk(index), reason)
    shutil.rmtree(folder, ignore_errors=True)
    return arrow_export.export_chunk(plan, index, folder, checksum=CHECKSUM)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    refused = re.search(r"NestedValueError: (.*)", text)  # a value json_text's UDF cannot read
    if refused:
        return refused.group(1)[:500]
    return text.split("\n", 1)[0][:500] if text else type(exc).__name__
