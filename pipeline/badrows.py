"""Bad rows: with a budget (``max_bad_rows`` / ``max_bad_fraction`` in config/), the rows PostgreSQL cannot hold
are set aside in the quarantine table (``postgres.quarantine``) with their source coordinates, instead of failing
the load; without one (the default) the load refuses them, naming file, column and chunk.

The export finds them batch by batch: the values the load refuses (``verification.stats.Refusal``: a NUL byte
in text or inside a nested value, a map holding one key twice, a date or timestamp outside PostgreSQL's range).
A chunk's bad rows go to its ``quarantine.jsonl``, each with its file, its index in the file and its row group,
the columns at fault, the reason in one sentence and its values in PostgreSQL's text forms (bytes as ``\\x`` hex,
a NUL byte written as the six characters ``\\u0000``, which jsonb cannot hold otherwise). The chunk's COPY puts
them into the quarantine table in its transaction, so each is quarantined exactly once, as each good row is
loaded once. ``original_rows`` reads them back from the source files, as they are there.
"""

from __future__ import annotations

import bisect
import json
import os
from functools import reduce
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import SourceError
from .model.plan import Plan
from .verification.batch import refused_values
from .verification.stats import Refusal

SIDECAR = "quarantine.jsonl"

_WHY = {
    Refusal.NUL: "holds a NUL byte, which PostgreSQL text and jsonb cannot store",
    Refusal.OUTSIDE_RANGE: "holds a date or timestamp outside PostgreSQL's range (4714-11-24 BC to 5874897 AD)",
    Refusal.DUPLICATE_KEY: "holds a map with one key twice, which a jsonb object cannot keep",
}


class BadRow(NamedTuple):
    file: str
    row: int  # index of the row in its file, from 0
    columns: list[str]  # at fault
    reason: str
    values: dict  # column name -> PostgreSQL's text form (None for NULL)


def _text(field: bytes | None) -> str | None:
    """A CSV field as its value's text: NULL for the empty field, quotes undone; NUL escaped for jsonb, bytes
    that are not UTF-8 as ``\\x`` escapes."""
    if not field:
        return None
    if field[:1] == b'"':
        field = field[1:-1].replace(b'""', b'"')
    return field.decode("utf-8", "backslashreplace").replace("\x00", "\\u0000")


def split(plan: Plan, batch: pa.RecordBatch, fields: list[pa.Array]) -> tuple[list[BadRow], pa.Array | None]:
    """The batch's bad rows, and the mask of the rows to load (None: every row). Only with a budget."""
    if not plan.quarantine:
        return [], None
    faults = []  # (column, refusal, mask)
    for i, column in enumerate(plan.columns):
        for refusal, mask in refused_values(column, batch.column(i), fields[i]).items():
            mask = mask.fill_null(False)
            if pc.any(mask).as_py():
                faults.append((column, refusal, mask))
    if not faults:
        return [], None
    bad = reduce(pc.or_, [mask for *_, mask in faults])
    at_column = {c.name: i for i, c in enumerate(plan.columns)}
    shown = [at_column[c.name] for c in plan.table_columns]
    files, rows = batch.column(at_column[plan.file_column]), batch.column(at_column[plan.row_column])
    raw = {i: fields[i].cast(pa.binary()) for i in shown}  # as bytes: a value need not be UTF-8
    found = []
    for at in pc.indices_nonzero(bad).to_pylist():
        why = [(c.name, r) for c, r, mask in faults if mask[at].as_py()]
        found.append(BadRow(files[at].as_py(), rows[at].as_py(), sorted({name for name, _ in why}),
                            "; ".join(f"column {name!r} {_WHY[r]}" for name, r in why),
                            {plan.columns[i].name: _text(raw[i][at].as_py()) for i in shown}))
    return found, pc.invert(bad)


def _row_groups(path: str) -> list[int]:
    """The first row of each row group of a Parquet file."""
    meta = pq.ParquetFile(path).metadata
    starts, first = [], 0
    for g in range(meta.num_row_groups):
        starts.append(first)
        first += meta.row_group(g).num_rows
    return starts


def records(plan: Plan, found: list[BadRow]) -> list[dict]:
    """The quarantine table's rows for bad rows of the plan's files: with each row's row group, and its file's size
    and modification time as the plan found them (a Parquet written out from the quarantine checks them)."""
    by_name = {f.name: f for f in plan.files}
    groups: dict[str, list[int]] = {}
    out = []
    for bad in found:
        path = os.path.join(plan.source, bad.file)
        if bad.file not in groups:
            try:
                groups[bad.file] = _row_groups(path)
            except (OSError, pa.ArrowException):  # gone or rewritten since: the row's group is not known
                groups[bad.file] = []
        starts = groups[bad.file]
        source = by_name.get(bad.file)
        out.append({"file": bad.file, "row": bad.row, "row_group": bisect.bisect_right(starts, bad.row) - 1
                    if starts else None, "columns": bad.columns, "reason": bad.reason, "values": bad.values,
                    "size": source.size if source else None, "mtime_ns": source.mtime_ns if source else None})
    return out


def write(folder: Path, plan: Plan, found: list[BadRow]) -> None:
    """The chunk's bad rows beside its CSV parts (none: no file)."""
    if found:
        with open(folder / SIDECAR, "w") as out:
            for record in records(plan, found):
                out.write(json.dumps(record) + "\n")


def read(folder: Path) -> list[dict]:
    """The bad rows a chunk's export set aside."""
    try:
        with open(folder / SIDECAR) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


class Changed(SourceError):
    """A quarantined row's source file is no longer the one it was read from."""


def original_rows(source: str, wanted: list[tuple[str, int, int | None, int | None]],
                  int96_unit: str | None = None) -> pa.Table:
    """The rows (file, row index, size, mtime_ns: None for unchecked) as the source files hold them, in their schema,
    by file and row. Raises ``Changed`` naming a file that was removed or changed since. ``int96_unit``: INT96
    timestamps read in that unit (as a load reads them), not as nanoseconds."""
    pieces = []
    for name in sorted({w[0] for w in wanted}):
        path = os.path.join(source, name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise Changed(f"file {path!r} is no longer there") from None
        expected = next((size, mtime) for n, _, size, mtime in wanted if n == name)
        if expected != (st.st_size, st.st_mtime_ns) and expected != (None, None):
            raise Changed(f"file {path!r} changed after its rows were quarantined")
        parquet = pq.ParquetFile(path, coerce_int96_timestamp_unit=int96_unit)
        starts = _row_groups(path)
        rows = sorted(row for n, row, *_ in wanted if n == name)
        for group in sorted({bisect.bisect_right(starts, r) - 1 for r in rows}):
            table = parquet.read_row_group(group)
            pieces.append(table.take([r - starts[group] for r in rows if bisect.bisect_right(starts, r) - 1 == group]))
    if not pieces:
        return pa.table({})
    return pa.concat_tables([p.cast(pieces[0].schema) for p in pieces])
