"""The Arrow engine: the chunk export done in-process with pyarrow, no JVM.

pyarrow reads the chunk's files in record batches, and the per-batch core (``core``), which the Spark
engine runs on its executors too, writes them as one part file and computes their source statistics.
Rows stream through: memory stays flat however large a chunk or file is. This module also reads the
source for the Spark engine: the types its tasks cast Spark's batches to (``read_schema``), the chunks
Spark cannot read (``export_chunk``), the rows COPY refused (``rows_stats``), per-column checksums after
a mismatch (``column_checksums``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from .. import badrows, config
from ..errors import ExportError, first_line
from ..model.chunk import Chunk, part_name
from ..model.plan import Plan
from ..types import nested
from ..types.text import csv_field
from ..verification.batch import batch_stats
from ..verification.pghash import hash_sum
from ..verification.rowhash import Checksum
from ..verification.stats import Stats
from .binary import BinaryEncodingError
from .core import BATCH_ROWS, loadable, write_batches


def _parquet_format() -> ds.ParquetFileFormat:
    """INT96 timestamps as microseconds, as planned (see ``source.footers._arrow_schema``); page CRCs checked where a
    file carries them (``[export] verify_page_checksums``)."""
    return ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us"),
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            page_checksum_verification=config.export().verify_page_checksums))


def read_failure(path: str, exc: Exception) -> str:
    """One sentence on why a reader failed on a file, naming it."""
    reason = first_line(exc, 300)
    if "CRC checksum verification failed" in reason:
        return f"file {path!r} is corrupt: a page does not match the CRC checksum the file stores for it ({reason})"
    if "Nested data conversions not implemented for chunked array outputs" in reason:  # apache/arrow#32723
        return (f"file {path!r} holds more than 2 GiB of strings or bytes of one list, struct or map column in one "
                "row group, which pyarrow cannot read as one piece (and a jsonb value holds at most 255 MB); "
                "write it with smaller row groups or smaller values")
    return f"file {path!r} cannot be read ({reason})"


@contextmanager
def _reading(plan: Plan, index: int, path: str):
    """Turn pyarrow's failure to read ``path`` into an ``ExportError`` naming it."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno:  # the machine's failure (a permission, say), not the file's
            raise
        raise ExportError(f"{read_failure(path, exc)}; {Chunk(plan.load_id, index)} of {plan.table} was not "
                          "exported and nothing was published") from exc


def _with_coordinates(plan: Plan, batch: pa.RecordBatch, name: str, first_row: int) -> pa.RecordBatch:
    """``batch`` (rows ``first_row``.. of file ``name``) with the columns the plan adds: file name, row index."""
    added = []
    if plan.file_column:
        added.append(pa.repeat(pa.scalar(name, pa.string()), batch.num_rows))
    if plan.row_column:
        added.append(pa.array(np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)))
    if not added:
        return batch
    return pa.RecordBatch.from_arrays([*batch.columns, *added], names=[c.name for c in plan.columns])


def _file_batches(plan: Plan, index: int, schema: pa.Schema):
    """The batches of the chunk's files in order, read as ``schema`` (with the columns the plan adds); each
    file's rows checked against its footer's count, and a failure naming the file."""
    names = plan.column_names
    parquet = _parquet_format()
    files = [plan.files[i].name for i in plan.chunks[index]]
    for path, name, expected in zip(plan.chunk_paths(index), files, plan.chunk_file_rows(index), strict=True):
        rows = 0
        with _reading(plan, index, path):
            for batch in ds.dataset(path, format=parquet, schema=schema).to_batches(
                    columns=names, batch_size=BATCH_ROWS, use_threads=True):
                yield _with_coordinates(plan, batch, name, rows)
                rows += batch.num_rows
        if rows != expected:
            raise ExportError(f"file {path!r} holds {rows:,} rows but its footer says {expected:,}: the file is "
                              f"inconsistent, so {plan.table} cannot be verified; nothing was published")


def _file_schema(plan: Plan, index: int) -> pa.Schema:
    """The schema the chunk's files are read as: its first file's (dictionary or not)."""
    first = plan.chunk_paths(index)[0]
    with _reading(plan, index, first):
        return ds.dataset(first, format=_parquet_format()).schema


def _empty(plan: Plan, schema: pa.Schema) -> pa.RecordBatch:
    """No rows, with the plan's columns as read with ``schema``."""
    return _with_coordinates(plan, pa.RecordBatch.from_pylist([], schema.empty_table().select(
        plan.column_names).schema), "", 0)


def read_schema(plan: Plan, index: int) -> pa.Schema:
    """The plan's columns (those it adds too) as pyarrow reads the chunk's files."""
    return _empty(plan, _file_schema(plan, index)).schema


def _batches(plan: Plan, index: int):
    """The chunk's rows in batches of about BATCH_ROWS, whatever the files' sizes (at least one batch)."""
    schema = _file_schema(plan, index)
    pending: list[pa.RecordBatch] = []
    rows, sent = 0, False
    for batch in _file_batches(plan, index, schema):
        pending.append(batch)
        rows += batch.num_rows
        if rows >= BATCH_ROWS:
            yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
            pending, rows, sent = [], 0, True
    if pending or not sent:
        table = pa.Table.from_batches(pending, schema=_empty(plan, schema).schema)
        yield pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], names=table.schema.names)


def export_chunk(plan: Plan, index: int, folder: Path, binary: bool = False) -> Stats:
    """Write chunk ``index`` of ``plan`` as ``folder/part-00000.csv`` (``.bin``: ``binary``, PostgreSQL's binary
    COPY format); return its source statistics."""
    path = folder / part_name(0, binary)
    try:
        folder.mkdir()
        with open(path, "wb", buffering=4 << 20) as out:
            stats, bad = write_batches(plan, _batches(plan, index), out, binary)
        badrows.write(folder, plan, bad)
    except (pa.ArrowException, nested.NestedValueError, BinaryEncodingError) as exc:
        reason = first_line(exc)
        raise ExportError(f"pyarrow failed to export {Chunk(plan.load_id, index)} of {plan.table} "
                          f"(source {plan.describe_chunk(index)}): {reason}") from exc
    except OSError as exc:  # a full disk, say: name the file
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return stats


def rows_stats(plan: Plan, wanted: list[tuple[str, int]], checksum: Checksum) -> Stats:
    """The source statistics of the rows (file, row index) as their export computed them: those of the rows COPY
    refused (``postgres.rejected``), which verification adds to the loaded rows."""
    if not wanted:
        return Stats.empty(plan.columns)
    wanted = sorted(wanted)  # the order ``original_rows`` reads them in
    files = {f.name: f for f in plan.files}
    table = badrows.original_rows(plan.source, [(f, r, files[f].size, files[f].mtime_ns) for f, r in wanted],
                                  int96_unit="us")
    columns = [table.column(name).combine_chunks() for name in plan.column_names]
    if plan.file_column:
        columns.append(pa.array([f for f, _ in wanted], pa.string()))
    if plan.row_column:
        columns.append(pa.array([r for _, r in wanted], pa.int64()))
    batch = loadable(pa.RecordBatch.from_arrays(columns, names=[c.name for c in plan.columns]))
    return batch_stats(plan.columns, batch, [csv_field(c, batch.column(i)) for i, c in enumerate(plan.columns)],
                       checksum)


def tracking_url() -> None:
    """Nothing to watch but the task's own progress."""
    return None


def column_checksums(plan: Plan) -> dict[int, int]:
    """Per non-float column i: the sum of ``hashtextextended`` of its CSV field over every source row
    (``verification.scan.column_checksums`` on the loaded side). Reads the whole source: used only to name
    the columns after a row checksum failed, whichever engine exported the load."""
    sums = {i: 0 for i, c in enumerate(plan.columns) if not c.is_float}
    for index in range(len(plan.chunks)):
        for batch in _batches(plan, index):
            for i in sums:
                sums[i] += hash_sum(csv_field(plan.columns[i], batch.column(i)))
    return sums
