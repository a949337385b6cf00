"""The per-batch core both engines run: Arrow record batches in, chunk rows and source statistics out.

For every batch: each column's CSV field (PostgreSQL's text form, ``types.text``), the rows the load
refuses set aside when it has a bad-row budget (``badrows.split``), the lines written back to back - or,
with binary chunks, the rows in PostgreSQL's binary COPY format (``binary``) -, and the batch's
statistics with the "typed" row hash (``verification.batch``). The Arrow engine runs it in
its own process on the batches pyarrow reads; the Spark engine runs it on its executors, on the batches
Spark reads and hands to ``DataFrame.mapInArrow`` (``spark_task``), each task writing one part file of
the chunk. So both write the same lines and observe the same statistics.

``spark_task`` is shipped to the executors by value (``engines.spark_session.by_value``): what it
reaches of this package must import nothing beyond pyarrow, numpy, pyspark and pgpq.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import badrows
from ..errors import first_line
from ..model.chunk import part_name
from ..model.plan import Plan
from ..types import nested
from ..types.mapping import Column, csv_order
from ..types.text import csv_field
from ..verification.batch import batch_stats
from ..verification.rowhash import Checksum, HashKind, hash_kind
from ..verification.stats import Stats, combine
from .binary import BinaryEncodingError, BinaryWriter

CHECKSUM = Checksum.TYPED
BATCH_ROWS = 131_072


def loadable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Half-precision floats widened to float32 (exactly), as the real column holds them."""
    columns = [c.cast(pa.float32()) if pa.types.is_float16(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _lines(columns: list[Column], fields: list[pa.Array]) -> pa.Array:
    """Every row's CSV line with its newline, from each column's CSV fields."""
    line = pc.binary_join_element_wise(*[fields[i] for i in csv_order(columns)], ",")
    return pc.binary_join_element_wise(line, "\n", "")


def _write(out: BinaryIO, lines: pa.Array) -> None:
    """Write a string array's values back to back: its data buffer, between the first and last offsets."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    out.write(memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])])


def _needs_field(column: Column, binary: bool) -> bool:
    """Whether the batch's statistics (or its chunk, as CSV) need the column's CSV field: its text for the
    row hash (numeric, bytea, jsonb), or to find the NUL bytes text and jsonb cannot hold."""
    return not binary or hash_kind(column) == HashKind.FIELD or column.kind.textual


def write_batches(plan: Plan, batches: Iterable[pa.RecordBatch], out: BinaryIO,
                  binary: bool = False) -> tuple[Stats, list[badrows.BadRow]]:
    """Write the rows of ``batches`` (the plan's columns, in its order) to ``out`` as CSV lines, or ``binary``: in
    PostgreSQL's binary COPY format; return their source statistics and, with a budget, the bad rows set aside
    (the statistics are those of the rows written). ``batches`` holds at least one batch (an empty one will do:
    the binary format's header needs the columns' types). A load with a budget writes CSV."""
    if binary and plan.quarantine:
        raise ValueError("a load with a bad-row budget writes CSV chunks: COPY finds the rows it refuses by their line")
    parts: list[Stats] = []
    bad: list[badrows.BadRow] = []
    writer = BinaryWriter(plan.columns, out) if binary else None
    for batch in batches:
        batch = loadable(batch)
        fields = [csv_field(c, batch.column(i)) if _needs_field(c, binary) else None
                  for i, c in enumerate(plan.columns)]
        found, keep = badrows.split(plan, batch, fields)
        if found:  # set aside (a budget): the rest is loaded, and its statistics are the source's
            batch, fields = batch.filter(keep), [f.filter(keep) for f in fields]
            bad += found
        parts.append(batch_stats(plan.columns, batch, fields, CHECKSUM))
        if parts[-1].refusals(plan.columns):  # its rows are not written: the export refuses the chunk, naming them
            batch, fields = batch.slice(0, 0), [f if f is None else f.slice(0, 0) for f in fields]
        if writer:
            writer.write(batch, fields)
        else:
            _write(out, _lines(plan.columns, fields))
    if writer:
        writer.close()
    stats = combine(parts, plan.columns)
    stats.quarantined = len(bad)
    return stats, bad


# --- on Spark's executors ---------------------------------------------------------------------------------

# One row per task of a chunk's export: what ``spark_task`` wrote and observed, or why it could not; and the
# same as the schema Spark is told (``mapInArrow``'s DDL)
_RESULT_SCHEMA = pa.schema([("part", pa.string()), ("stats", pa.string()), ("bad", pa.string()),
                            ("strangers", pa.int64()), ("entries", pa.string()), ("error", pa.string()),
                            ("unconformable", pa.bool_())])
TASK_RESULT = ", ".join(f"{f.name} {({pa.string(): 'string', pa.int64(): 'long', pa.bool_(): 'boolean'})[f.type]}"
                        for f in _RESULT_SCHEMA)


class Unconformable(Exception):
    """Spark read a column as a type that does not convert to the one pyarrow reads: pyarrow exports the chunk."""


def task_plan(plan: Plan) -> Plan:
    """What a task needs of the plan: its columns and options, without the (possibly 43,000) files."""
    return replace(plan, files=[], file_rows=[], chunks=[], file_leaf_entries=[], rewritten={})


def _relaxed(t: pa.DataType) -> pa.DataType:
    """``t`` with its dictionaries decoded and every field inside it nullable: Spark's types say which fields are
    required in their own way, and the text of a value does not depend on it."""
    if pa.types.is_dictionary(t):
        return _relaxed(t.value_type)
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _relaxed(f.type)) for f in t])
    if pa.types.is_map(t):
        return pa.map_(_relaxed(t.key_type), _relaxed(t.item_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_relaxed(t.value_type))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_relaxed(t.value_type), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(_relaxed(t.value_type))
    return t


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch as Spark hands it over, with each column cast to the type pyarrow reads the files as (``schema``):
    Spark reads uint64 as decimal(20, 0), uint32 as int64, INT96 as zoned timestamps, nanoseconds as int64
    (``spark.sql.legacy.parquet.nanosAsLong``), dictionaries decoded."""
    columns = []
    for array, field in zip(batch.columns, schema, strict=True):
        wanted = _relaxed(field.type)
        try:
            columns.append(array if _relaxed(array.type) == wanted else array.cast(wanted))
        except (pa.ArrowException, ValueError) as exc:
            raise Unconformable(f"Spark read column {field.name!r} as {array.type}, which does not convert to "
                                f"{field.type} as pyarrow reads it ({first_line(exc, 200)})") from exc
    return pa.RecordBatch.from_arrays(columns, names=schema.names)


def _at_least_one(batches: Iterator[pa.RecordBatch], width: int) -> Iterator[pa.RecordBatch]:
    """``batches``, or one batch of no rows and NULL columns (a task of no rows: Spark hands it no batch)."""
    sent = False
    for batch in batches:
        sent = True
        yield batch
    if not sent:
        yield pa.RecordBatch.from_arrays([pa.nulls(0) for _ in range(width)], names=[f"_{k}" for k in range(width)])


def spark_task(plan: Plan, folder: str, schema: pa.Schema, files: list[str], leaves: int, binary: bool = False):
    """The function ``mapInArrow`` runs on each task of chunk ``folder``'s export: its batches hold the plan's
    columns (Spark's types; ``schema``: pyarrow's) then ``leaves`` level-entry counts. It writes the task's rows
    as ``folder/part-<partition>.csv`` (``.bin``: ``binary``; by a rename, so a retried task replaces its part
    whole) and returns one row (``TASK_RESULT``): the part's name, its statistics and bad rows as JSON, the rows
    whose file name is not one of the chunk's ``files`` (Spark's ``_metadata``), and the entries counted per
    repeated leaf. A failure the load expects (a value it cannot write, a type Spark reads otherwise) is returned
    as ``error`` instead of raised: Spark would log it with its traceback, and fail the job before the other
    tasks' results are read. Any other failure is raised, with its traceback; either way no part is left
    half-written."""
    width = len(schema)
    names = pa.array(files, pa.string())

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        name = part_name(context.partitionId(), binary)
        tmp = os.path.join(folder, f".{name}.{context.attemptNumber()}.tmp")
        entries = [0] * leaves
        strangers = 0

        def conformed() -> Iterator[pa.RecordBatch]:
            nonlocal strangers
            for batch in _at_least_one(batches, width + leaves):
                for k in range(leaves):
                    entries[k] += pc.sum(batch.column(width + k)).as_py() or 0
                batch = _conform(batch.select(range(width)), schema)
                if plan.file_column:
                    named = pc.is_in(batch.column(plan.file_column), names)
                    strangers += batch.num_rows - (pc.sum(named).as_py() or 0)
                yield batch

        result = {"part": name, "stats": "{}", "bad": "[]", "strangers": 0, "entries": "[]", "error": None,
                  "unconformable": False}
        try:
            with open(tmp, "wb", buffering=4 << 20) as out:
                stats, bad = write_batches(plan, conformed(), out, binary)
            os.replace(tmp, os.path.join(folder, name))
            result.update(stats=json.dumps(stats.to_json()), bad=json.dumps([b._asdict() for b in bad]),
                          strangers=strangers, entries=json.dumps(entries))
        except (Unconformable, pa.ArrowException, nested.NestedValueError, BinaryEncodingError) as exc:
            result.update(error=first_line(exc),
                          unconformable=isinstance(exc, Unconformable))
        finally:  # any failure: no half-written part left in the chunk
            if os.path.exists(tmp):
                os.unlink(tmp)
        yield pa.RecordBatch.from_pylist([result], schema=_RESULT_SCHEMA)

    return run


def task_results(plan: Plan, rows: list) -> tuple[Stats, list[badrows.BadRow], int, list[int]]:
    """The chunk's statistics, bad rows, stranger rows and level entries per repeated leaf, from its tasks' rows
    (none failed)."""
    stats = combine([Stats.from_json(plan.columns, json.loads(r.stats)) for r in rows], plan.columns)
    bad = [badrows.BadRow(**b) for r in rows for b in json.loads(r.bad)]
    entries = [sum(k) for k in zip(*[json.loads(r.entries) for r in rows], strict=True)] if rows else [
        0 for _ in plan.repeated_leaves]
    return stats, bad, sum(r.strangers for r in rows), entries
