"""``python -m pipeline run``: load every table in config/ and print what was loaded;
``python -m pipeline status``: where each table's load stands;
``python -m pipeline quarantine TABLE``: the rows of a table its loads set aside.

It schedules ``IngestAll`` on the luigid at [core] default_scheduler_host/port when one
answers there, on the local scheduler otherwise, and exits non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import luigi
import pyarrow.parquet as pq
from luigi.cmdline_parser import CmdlineParser

from . import badrows, config, logs
from .errors import PipelineError
from .ingest import IngestAll
from .model.naming import TableName
from .postgres import client, quarantine, state
from .source import catalog


def _scheduler_up() -> bool:
    core = luigi.interface.core()
    try:
        with socket.create_connection((core.scheduler_host, core.scheduler_port), timeout=0.5):
            return True
    except OSError:
        return False


def _published_rows() -> dict[str, tuple[str, int]]:
    with client.connection() as conn:
        return {spec.table: state.published_load(conn, TableName.parse(spec.table)) for spec in catalog.load_tables()}


def _quarantined() -> dict[str, int]:
    with client.connection() as conn:
        held = quarantine.counts(conn)
    return {spec.table: held.get(tuple(TableName.parse(spec.table)), 0) for spec in catalog.load_tables()}


def run(args: argparse.Namespace) -> int:
    local = args.local_scheduler or not _scheduler_up()
    try:
        before = _published_rows()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    started = time.monotonic()
    # Luigi's own command line (--workers, --export-engine arrow, ...), so that tasks see it as under `luigi`.
    flags = ["--local-scheduler"] if local else []  # which the tasks see (Spark's UI is off then)
    with CmdlineParser.global_instance(["IngestAll", "--workers", str(args.workers), *flags, *args.luigi_args]):
        result = luigi.build([IngestAll()], local_scheduler=local, workers=args.workers, detailed_summary=True)
    seconds = time.monotonic() - started
    if result.status not in (luigi.execution_summary.LuigiStatusCode.SUCCESS,
                             luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY):
        print(f"FAILED after {seconds:.1f} s: see the errors above; rerun to resume", file=sys.stderr)
        return 1
    after = _published_rows()
    modes = {spec.table: spec.options.mode for spec in catalog.load_tables()}
    scheduler = "local scheduler" if local else "luigid"
    loaded = 0
    print(f"\nIngestAll finished in {seconds:.1f} s ({scheduler}, target {client.describe(client.target_dsn())})")
    for table, (load_id, rows) in after.items():
        prior = before.get(table)
        if prior == (load_id, rows):
            print(f"  {table:<40} {rows:>14,} rows  already up to date")
        elif modes[table] != "replace" and prior:
            loaded += rows - prior[1]
            done = "appended" if modes[table] == "append" else "more after the merge"
            print(f"  {table:<40} {rows:>14,} rows  {rows - prior[1]:,} {done} now")
        else:
            loaded += rows
            print(f"  {table:<40} {rows:>14,} rows  loaded now")
    if loaded:
        print(f"  {loaded:,} rows in {seconds:.1f} s = {loaded / seconds:,.0f} rows/s")
    for table, bad in _quarantined().items():
        if bad:
            print(f"  {table}: {bad:,} bad rows quarantined (python -m pipeline quarantine {table})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="load every table declared in config/ and print a summary; other "
                           "options go to Luigi (e.g. --export-engine arrow, --spark-master URL)")
    p_run.add_argument("--workers", type=int, default=2, help="Luigi workers (parallel chunk copies)")
    p_run.add_argument("--local-scheduler", action="store_true", help="do not use a running luigid")
    p_status = sub.add_parser("status", help="where each configured table's load stands (chunks, rows, elapsed, "
                              "ETA)")
    p_status.add_argument("--pending", action="store_true", help="also the files a run would take: new, "
                          "rewritten, removed, still being written (loads nothing)")
    p_quarantine = sub.add_parser("quarantine", help="a table's quarantined rows: file, row, columns, reason "
                                  "(max_bad_rows in config/)")
    p_quarantine.add_argument("table", help="the target table, schema.table")
    p_quarantine.add_argument("--parquet", metavar="OUT", default="", help="also write those rows, as the source "
                              "files hold them, to the Parquet file OUT: fix them and drop it into the source folder")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.luigi_args = rest
    logs.setup()
    config.private_state_dir()
    if args.command == "status":
        return show_status(args.pending)
    if args.command == "quarantine":
        return show_quarantine(args.table, args.parquet)
    return run(args)


def show_status(pending: bool = False) -> int:
    from .status import render, render_pending, status

    try:
        print(render(status()))
        if pending:
            print()
            print(render_pending())
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def show_quarantine(table: str, parquet: str = "") -> int:
    """``python -m pipeline quarantine TABLE``: the table's quarantined rows - file, row, row group, columns,
    reason - and with ``--parquet OUT`` those rows as the source files hold them, in their schema: fix them, drop
    the file into the source folder, and the next load takes them."""
    from .status import table_text

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
            _write_quarantined(rows, parquet)
    except (PipelineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _write_quarantined(rows: list[quarantine.Quarantined], path: str) -> None:
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
