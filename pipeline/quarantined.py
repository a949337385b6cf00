"""``python -m pipeline quarantine TABLE``: the table's quarantined rows (``badrows``) - file, row, row group,
columns, reason - and with ``--parquet OUT`` those rows as the source files hold them, in their schema: fix them,
drop the file into the source folder, and the next load takes them."""

from __future__ import annotations

import os
import sys

import pyarrow.parquet as pq

from . import badrows
from .errors import PipelineError
from .model.naming import TableName
from .postgres import client, quarantine
from .status import table_text


def show(table: str, parquet: str = "") -> int:
    try:
        target = TableName.parse(table)
        with client.connection() as conn:
            rows = quarantine.listing(conn, target)
        if not rows:
            print(f"{target}: no quarantined rows")
            return 0
        print(table_text(("file", "row", "row group", "columns", "reason", "found by", "load"),
                       [(r.file, f"{r.row:,}", "-" if r.row_group is None else r.row_group, ",".join(r.columns),
                         r.reason, r.found_by, r.load_id) for r in rows]))
        print(f"\n{len(rows):,} quarantined rows in {target}")
        if parquet:
            _write(rows, parquet)
    except (PipelineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _write(rows: list[quarantine.Quarantined], path: str) -> None:
    """The rows as their source files hold them, in one Parquet file: one row per (file, row) however many loads
    quarantined it."""
    folders = sorted({r.source for r in rows})
    if len(folders) > 1:
        raise badrows.Changed(f"the quarantined rows come from {len(folders)} source folders; load each on its own")
    wanted = list({(r.file, r.row): (r.file, r.row, r.size, r.mtime_ns) for r in rows}.values())
    table = badrows.original_rows(folders[0], wanted, int96_unit="us")  # INT96 out of range as nanoseconds
    if os.path.abspath(os.path.dirname(path) or ".") == os.path.abspath(folders[0]):
        raise badrows.Changed(f"{path!r} is in the source folder itself: write it elsewhere, fix it, then move it "
                              "there")
    pq.write_table(table, path)
    print(f"wrote {table.num_rows:,} rows to {path!r}, in the schema of the files in {folders[0]!r}: fix them, then "
          "move the file into that folder")
