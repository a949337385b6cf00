"""The Spark engine: Spark reads a chunk's Parquet files, and the per-batch core writes them.

Spark reads and partitions the chunk's files and hands each task's rows to ``DataFrame.mapInArrow`` as Arrow
record batches; there the per-batch core (``core``, the Arrow engine's own code, shipped to the executors by
value) writes the task's part of the chunk (CSV, or PostgreSQL's binary COPY format) and computes its
source statistics. So both engines write the same rows, with the same checksums, and on a cluster the
executors do the work. Spark's reading is checked against the footers (rows, list and map entries, file
names); where it reads other than they say, or cannot read the files, pyarrow exports the chunk instead
(``_with_arrow``).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from .. import badrows
from ..errors import ExportError, first_line
from ..model.chunk import Chunk
from ..model.plan import Plan
from ..types.mapping import Column
from ..verification.stats import Stats
from . import arrow, core
from .spark_session import by_value, session, ui_url

log = logging.getLogger(__name__)


def quoted(name: str) -> str:
    """A column name as Spark SQL reads it literally."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str):
    from pyspark.sql import functions as F

    return F.col(quoted(name))


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


def export_chunk(plan: Plan, index: int, folder: Path, binary: bool = False) -> Stats:
    """Write chunk ``index`` of ``plan`` as part files in ``folder``, one per Spark task (CSV, or PostgreSQL's
    binary COPY format: ``binary``); return the source statistics the tasks observed.

    Where Spark's Parquet reader cannot read the chunk's files - it fails on them, or reads other rows, other
    list and map entries or other file names than their footers and the plan say - the chunk is written by
    pyarrow instead (see ``_with_arrow``); a file pyarrow cannot read either is refused naming it."""
    spark = session()
    chunk = Chunk(plan.load_id, index)
    paths = [_hadoop_path(p) for p in plan.chunk_paths(index)]
    files = [plan.files[i].name for i in plan.chunks[index]]
    # the types pyarrow reads the files as: planning has read every footer with pyarrow already
    task = core.spark_task(core.task_plan(plan), str(folder), arrow.read_schema(plan, index), files,
                           len(plan.repeated_leaves), binary)
    spark.sparkContext.setJobDescription(f"{plan.table} {chunk.dirname}")

    def by_arrow(reason: str) -> Stats:
        return _with_arrow(plan, index, folder, binary, reason)

    folder.mkdir()
    try:
        source = with_coordinates(spark.read.parquet(*paths), plan)
        # by position: mapInArrow looks its input columns up by name, and would read "a.b" as a field of "a"
        frame = source.select(*[col(c.name).alias(f"_c{i}") for i, c in enumerate(plan.columns)],
                              *leaf_entries(source, plan.columns, plan.repeated_leaves))
        results = frame.mapInArrow(by_value(task), core.TASK_RESULT).collect()
    except Exception as exc:
        reason = _read_failure(exc)
        if reason is None:
            raise ExportError(f"Spark failed to export {chunk} of {plan.table} (source "
                              f"{plan.describe_chunk(index)}): {_first_line(exc)}") from exc
        return by_arrow(f"Spark's Parquet reader cannot read it ({reason})")
    failed = next((r for r in results if r.error), None)
    if failed and failed.unconformable:
        return by_arrow(failed.error)
    if failed:
        raise ExportError(f"Spark failed to export {chunk} of {plan.table} (source {plan.describe_chunk(index)}): "
                          f"{failed.error}")
    stats, bad, strangers, entries = core.task_results(plan, results)
    read = stats.rows + stats.quarantined
    if read != plan.chunk_rows(index):
        return by_arrow(f"Spark's Parquet reader read {read:,} rows where the footers count {plan.chunk_rows(index):,}")
    if strangers:
        return by_arrow(f"Spark named the file of {strangers:,} rows other than the chunk's files do")
    if entries != plan.chunk_leaf_entries(index):
        return by_arrow(f"Spark's Parquet reader read {sum(entries):,} list or map entries where the footers count "
                        f"{sum(plan.chunk_leaf_entries(index)):,}")
    badrows.write(folder, plan, bad)
    return stats


def tracking_url() -> str | None:
    """Spark's UI, when it runs (``[spark] ui``), started with the session."""
    return ui_url()


def _with_arrow(plan: Plan, index: int, folder: Path, binary: bool, reason: str) -> Stats:
    """Export the chunk with pyarrow, after Spark could not read it as its footers say."""
    log.warning("%s: %s (source %s): %s; pyarrow exports it instead",
                plan.table, Chunk(plan.load_id, index), plan.describe_chunk(index), reason)
    shutil.rmtree(folder, ignore_errors=True)
    return arrow.export_chunk(plan, index, folder, binary)


def _first_line(exc: Exception) -> str:
    """Spark's error in one line: for a failure in a Python worker, the exception its traceback ends with."""
    text = str(exc).strip()
    raised = re.findall(r"^(\w+(?:Error|Exception): .*)$", text, re.MULTILINE) if "Traceback" in text else []
    return raised[-1][:500] if raised else first_line(exc)
