"""The rows COPY itself refuses (text that is not UTF-8), for a load with a bad-row budget (``badrows``).

PostgreSQL 15 stops a COPY at the first value it cannot read and names its line - for CSV, the line in the input,
counting a quoted newline as a line - and its column. The chunk's COPY runs inside a savepoint; on such an
error it is rolled back to it, the record is looked up in the chunk file (its file and row index are two of its
fields: a budgeted load carries them), and the COPY runs again without it. A chunk with k refused rows costs
k + 1 COPYs of it, all in the chunk's one transaction; a chunk without costs nothing more.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg2.errors

from ..badrows import BadRow
from ..model.plan import Plan
from ..types.mapping import csv_order

_WHERE = re.compile(r"COPY [^,]+, line (\d+)(?:, column (.+?)(?:: |$))?", re.M)


def csv_records(path: Path) -> Iterator[bytes]:
    """The CSV records of a chunk file, each with its newline (a newline inside quotes stays in its record)."""
    with open(path, "rb") as f:
        pending, quotes = [], 0
        for line in f:
            pending.append(line)
            quotes += line.count(b'"')
            if quotes % 2 == 0:
                yield b"".join(pending)
                pending, quotes = [], 0
        if pending:
            yield b"".join(pending)


class _Without(io.RawIOBase):
    """A chunk file without the records numbered (from 1) in ``skip``, for ``copy_expert``."""

    def __init__(self, path: Path, skip: set[int]):
        self._records = (r for n, r in enumerate(csv_records(path), 1) if n not in skip)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts, have = [self._buffer], len(self._buffer)
        for record in self._records:
            parts.append(record)
            have += len(record)
            if 0 <= size <= have:
                break
        data = b"".join(parts)
        cut = len(data) if size < 0 else size
        self._buffer = data[cut:]
        return data[:cut]


def _record_at(path: Path, line: int, skipped: set[int]) -> tuple[int, bytes]:
    """(number in the file, bytes) of the record holding the ``line``-th line sent - PostgreSQL counts lines, a
    record with a quoted newline spans two - the ``skipped`` records left out."""
    sent = 0
    for number, record in enumerate(csv_records(path), 1):
        if number not in skipped:
            sent += record.count(b"\n") or 1
            if sent >= line:
                return number, record
    raise ValueError(f"{path} has no line {line}")


def _refused(plan: Plan, record: bytes, column: str | None, exc: psycopg2.Error) -> BadRow:
    """A record COPY refused as a bad row, with the server's reason."""
    text = record.decode("utf-8", "surrogateescape")
    fields = next(csv.reader(io.StringIO(text, newline="")))
    names = [plan.columns[i].name for i in csv_order(plan.columns)]
    raw = {n: f.encode("utf-8", "surrogateescape") for n, f in zip(names, fields, strict=True)}
    values = {n: b.decode("utf-8", "backslashreplace") if b else None for n, b in raw.items()}
    file, row = values[plan.file_column], int(values[plan.row_column])
    shown = {c.name for c in plan.table_columns}
    values = {n: v for n, v in values.items() if n in shown}
    # a value that is not UTF-8 fails before COPY reads its fields, so the server names no column
    columns = [column] if column else [n for n in shown if not _utf8(raw[n])]
    message = (exc.diag.message_primary or str(exc)).strip()
    what = f"its value of column {columns[0]!r}" if len(columns) == 1 else "it"
    return BadRow(file, row, columns, f"PostgreSQL's COPY refuses {what}: {message}", values)


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def copy_file(cur, statement, path: Path, buffer: int, plan: Plan, room: int) -> tuple[int, list[BadRow]]:
    """COPY one chunk file: (rows copied, the rows COPY refused, left out - with a budget, up to ``room`` of them,
    what the load's budget has left). Only a value that is not UTF-8 (or has no equivalent in the server's
    encoding) is taken for a bad row: any other error of COPY's would be the export's and stops the load."""
    if not plan.quarantine:
        with open(path, "rb") as f:
            cur.copy_expert(statement, f, size=buffer)
        return cur.rowcount, []
    refused: dict[int, BadRow] = {}
    cur.execute("SAVEPOINT pipeline_copy")
    while True:
        try:
            with open(path, "rb") if not refused else _Without(path, set(refused)) as f:  # as it is, until one
                cur.copy_expert(statement, f, size=buffer)
        except (psycopg2.errors.CharacterNotInRepertoire, psycopg2.errors.UntranslatableCharacter) as exc:
            where = _WHERE.search(exc.diag.context or "")
            if where is None or len(refused) >= room:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT pipeline_copy")  # the savepoint stays, for the next try
            number, record = _record_at(path, int(where.group(1)), set(refused))
            refused[number] = _refused(plan, record, where.group(2), exc)
            continue
        copied = cur.rowcount
        cur.execute("RELEASE SAVEPOINT pipeline_copy")
        return copied, list(refused.values())
