"""The Spark engine: the CSV export of a chunk, written by Spark.

Every value is turned into its PostgreSQL text form by a Spark SQL expression chosen by
the column's kind (``spark_text``), and each row into one CSV line that Spark writes with
its plain text writer. That sidesteps every lossy default of Spark's CSV writer (trimmed
spaces, millisecond timestamps, backslash escapes): non-null text is always quoted with
quotes doubled, NULL is an unquoted empty field, so PostgreSQL's ``FORMAT csv`` reads back
exactly what Parquet held. The source statistics are observed on the same job (``spark_stats``).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from ..errors import ExportError
from ..model.chunk import Chunk
from ..model.plan import Plan
from ..types.mapping import Column, csv_order
from ..verification.rowhash import Checksum
from ..verification.stats import Stats
from . import spark_stats
from .spark_session import session, ui_url
from .spark_text import col, csv_value, source_value

log = logging.getLogger(__name__)
CHECKSUM = Checksum.MD5


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
    return [counters[leaf][1](col(counters[leaf][0])).alias(f"_l{k}") for k, leaf in enumerate(leaves)]


def csv_frame(frame, columns: list[Column], observation, leaves: list[int] = ()):
    """``frame`` as one CSV line per row (column ``value``, fields in ``csv_order``), observing the
    source statistics on the way (``spark_stats``), and the level entries of the ``leaves`` (``leaves_<k>``)."""
    from pyspark.sql import functions as F

    order = csv_order(columns)
    fields = frame.select(*[csv_value(c).alias(f"_f{i}") for i, c in enumerate(columns)],
                          *[source_value(c).alias(f"_r{i}") for i, c in enumerate(columns)
                            if c.is_float or c.kind.dated],
                          *leaf_entries(frame, columns, list(leaves)))
    head = [F.col(f"_f{i}") for i in order if not columns[i].is_float]
    tail = [F.col(f"_f{i}") for i in order if columns[i].is_float]
    lined = fields.select("*", (F.concat_ws(",", *head) if head else F.lit("")).alias("_h"))
    line = F.concat_ws(",", *([F.col("_h")] if head else []), *tail) if tail else F.col("_h")
    measured = lined.select(line.alias("value"), *spark_stats.row_metrics(columns),
                            *[F.col(f"_l{k}") for k in range(len(leaves))])
    entries = [F.sum(f"_l{k}").alias(f"leaves_{k}") for k in range(len(leaves))]
    return measured.observe(observation, *spark_stats.aggregates(columns), *entries).select("value")


def with_coordinates(frame, plan: Plan):
    """``frame`` with the columns the plan adds: each row's file name and its index in the file, from Spark's
    ``_metadata``. Its ``file_name`` is URI-encoded: '%' and the characters a URI may not hold are escaped, '+'
    is not - so it is decoded with '+' escaped first (``url_decode`` would read it as a space)."""
    from pyspark.sql import functions as F

    added = []
    if plan.file_column:
        name = F.url_decode(F.replace(F.col("_metadata.file_name"), F.lit("+"), F.lit("%2B")))
        added.append(name.alias(plan.file_column))
    if plan.row_column:
        added.append(F.col("_metadata.row_index").alias(plan.row_column))
    return frame.select("*", *added) if added else frame


def _strangers(frame, plan: Plan, index: int, observation):
    """``frame``, counting (as ``strangers``) the rows whose file name is not one of the chunk's files."""
    from pyspark.sql import functions as F

    if not plan.file_column:
        return frame
    names = [plan.files[i].name for i in plan.chunks[index]]
    stranger = F.when(col(plan.file_column).isin(names), 0).otherwise(1)
    return frame.observe(observation, F.sum(stranger).alias("strangers"))


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


def export_chunk(plan: Plan, index: int, folder: Path) -> Stats:
    """Write chunk ``index`` of ``plan`` as CSV part files in ``folder``; return the source statistics
    Spark observed during the write.

    Where Spark's Parquet reader cannot read the chunk's files - it fails on them, or reads other rows or
    other list and map entries than their footers count - the chunk is written by pyarrow instead, with the
    same row hash (see ``_with_arrow``); a file pyarrow cannot read either is refused naming it."""
    from pyspark.sql import Observation

    spark = session()
    chunk = Chunk(plan.load_id, index)
    paths = [_hadoop_path(p) for p in plan.chunk_paths(index)]
    observation, names = Observation(f"chunk{index}"), Observation(f"chunk{index}-files")
    spark.sparkContext.setJobDescription(f"{plan.table} {chunk.dirname}")
    try:
        source = _strangers(with_coordinates(spark.read.parquet(*paths), plan), plan, index, names)
        frame = csv_frame(source, plan.columns, observation, plan.repeated_leaves)
        frame.write.option("compression", "none").text(str(folder))
        observed = observation.get
        stats = spark_stats.observed(plan.columns, observed)
        entries = [observed[f"leaves_{k}"] or 0 for k in range(len(plan.repeated_leaves))]
        strangers = names.get["strangers"] if plan.file_column else 0
    except Exception as exc:
        reason = _read_failure(exc)
        if reason is None:
            raise ExportError(f"Spark failed to export {chunk} of {plan.table} (source "
                              f"{plan.describe_chunk(index)}): {_first_line(exc)}") from exc
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader cannot read it ({reason})")
    if stats.rows != plan.chunk_rows(index):
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader read {stats.rows:,} rows where the "
                                                f"footers count {plan.chunk_rows(index):,}")
    if strangers:
        return _with_arrow(plan, index, folder, f"Spark named the file of {strangers:,} rows other than the chunk's "
                                                "files do")
    if entries != plan.chunk_leaf_entries(index):
        return _with_arrow(plan, index, folder, f"Spark's Parquet reader read {sum(entries):,} list or map entries "
                                                f"where the footers count {sum(plan.chunk_leaf_entries(index)):,}")
    if plan.quarantine and stats.refusals(plan.columns):  # the per-batch code sets the bad rows aside
        return _with_arrow(plan, index, folder, f"it holds {'; '.join(stats.refusals(plan.columns))}, which go to "
                                                "the quarantine", warn=False)
    return stats


def tracking_url() -> str | None:
    """Spark's UI, when it runs (``[spark] ui``), started with the session."""
    return ui_url()


def _with_arrow(plan: Plan, index: int, folder: Path, reason: str, warn: bool = True) -> Stats:
    """Export the chunk with pyarrow, computing the Spark engine's row hash, after Spark could not read it (or
    found bad rows in it, ``warn`` False)."""
    from . import arrow

    log.log(logging.WARNING if warn else logging.INFO, "%s: %s (source %s): %s; pyarrow exports it instead",
            plan.table, Chunk(plan.load_id, index), plan.describe_chunk(index), reason)
    shutil.rmtree(folder, ignore_errors=True)
    return arrow.export_chunk(plan, index, folder, checksum=CHECKSUM)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    refused = re.search(r"NestedValueError: (.*)", text)  # a value json_text's UDF cannot read
    if refused:
        return refused.group(1)[:500]
    return text.split("\n", 1)[0][:500] if text else type(exc).__name__
