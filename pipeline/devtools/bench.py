"""``make bench`` / ``python -m pipeline.devtools.bench``: our pipeline against the raw COPY limit and the
two original solutions, on one PostgreSQL server, in one run.

Methods (each loads the same dataset into an empty table, timed as a whole process):

* ``copy-1`` / ``copy-2``: ``psql \\copy`` of ready CSV files, one file, or two halves at once
  (the COPY limit; the CSV is made once by ``COPY ... TO`` from a loaded table);
* ``binary-2``: the same with two halves in PostgreSQL's binary COPY format (the server's floor);
* ``adbc``: ADBC's ``adbc_ingest`` (binary COPY over one connection), and ``pgpq-2``: a pyarrow -> pgpq
  (binary COPY encoder) -> COPY script, two processes, each half the files - the unverified loaders a
  user would pick instead (``pip install '.[bench]'``; skipped without them);
* ``spark-csv-serial`` (original solution 2): Spark's CSV writer, then one COPY per part file;
* ``spark-jdbc`` (original solution 1): Spark's JDBC writer with the pgjdbc jar;
* ``pipeline`` / ``pipeline-arrow``: ``luigi --module pipeline IngestTable`` cold, with a fresh state
  dir, with the Spark or the Arrow export engine; ``pipeline-binary`` / ``pipeline-arrow-binary``: the same
  with binary chunks (``[export] chunk_format``); ``pipeline-arrow-budget``: the Arrow engine with a bad-row
  budget (``--max-bad-rows 100``) on data without a bad row - the cost of the quarantine's coordinates;
* ``append`` (minute datasets): a table holding the dataset's files (loaded with ``--mode append``) gets the
  next minute file appended, with either engine; reported as seconds and as a share of the full load.

Every result is checked against the source by row count and the content statistics of
``verification`` (a lossy method shows ``exact = no``), then dropped. Datasets are generated deterministically
and cached under ``<state_dir>/bench/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import importlib.util
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

from .. import config
from ..model.load import Load
from ..model.naming import TableName
from ..postgres import client
from ..postgres.passwords import read_secret
from ..source.listing import fingerprint, list_files
from ..source.planning import make_plan
from ..verification.scan import table_stats
from . import sample
from .bench_data import copy_inputs, dataset
from .bench_methods import ADBC, PGPQ, SPARK_CSV_SERIAL, SPARK_JDBC, libpq_env, psql_copy, spark_script, timed

# our pipeline: the Spark engine, the Arrow engine; with binary chunks; with a bad-row budget
PIPELINES = ("pipeline", "pipeline-arrow", "pipeline-binary", "pipeline-arrow-binary", "pipeline-arrow-budget")
PGJDBC = sorted(glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/postgresql/*/postgresql-*.jar"))
                + glob.glob("/usr/share/java/postgresql*.jar"))


class Bench:
    def __init__(self, dsn: str, work: Path):
        self.dsn, self.work = dsn, work

    def execute(self, statement, params=None):
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def empty_table(self, name: str, columns) -> TableName:
        table = TableName("bench", name)
        self.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}; DROP TABLE IF EXISTS {}").format(
            sql.Identifier(table.schema), table.identifier()))
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns)
        self.execute(sql.SQL("CREATE TABLE {} ({})").format(table.identifier(), cols))
        return table

    def quoted(self, table: TableName) -> str:
        """The table's name quoted as SQL, for the tools that take it as text (psql's \\copy, JDBC)."""
        conn = psycopg2.connect(self.dsn)
        try:
            return table.identifier().as_string(conn)
        finally:
            conn.close()

    def stats(self, table: TableName, columns):
        conn = psycopg2.connect(self.dsn)
        try:
            with client.transaction(conn, f"measuring {table}") as cur:
                return table_stats(cur, table.identifier(), columns)
        finally:
            conn.close()

    def run(self, method: str, folder: Path, plan, chunk_rows: int) -> tuple[float, int, float, TableName]:
        """Load ``folder`` with ``method``; returns (seconds, peak MiB, busy CPU seconds, loaded table)."""
        table = self.empty_table(method.replace("-", "_"), plan.columns)
        scratch = self.work / method
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        if method in ("copy-1", "copy-2"):
            names = ["all.csv"] if method == "copy-1" else ["half-1.csv", "half-2.csv"]
            return (*timed([psql_copy(self.quoted(table), self.work / "csv" / n) for n in names],
                           env=libpq_env(self.dsn)), table)
        if method == "binary-2":
            return (*timed([psql_copy(self.quoted(table), self.work / "csv" / f"half-{n}.bin", "binary")
                            for n in (1, 2)], env=libpq_env(self.dsn)), table)
        if method == "adbc":
            return (*timed([spark_script(ADBC) + [str(folder), *table]], env=libpq_env(self.dsn)), table)
        if method == "pgpq-2":
            files = [str(folder / f.name) for f in list_files(folder)]
            halves = [files[: len(files) // 2], files[len(files) // 2:]]
            return (*timed([spark_script(PGPQ) + [*table, *half] for half in halves if half],
                           env=libpq_env(self.dsn)), table)
        if method == "spark-csv-serial":
            return (*timed([spark_script(SPARK_CSV_SERIAL) + [str(folder), str(scratch / "csv"), *table]],
                           env=libpq_env(self.dsn)), table)
        if method == "spark-jdbc":
            p = psycopg2.extensions.parse_dsn(self.dsn)
            url = f"jdbc:postgresql://{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"
            # JDBC reads no pgpass file: the password goes in the environment, never on the command line
            env = libpq_env(self.dsn)
            if "PGPASSWORD" not in env and "passfile" in p:
                env["PGPASSWORD"] = read_secret(Path(p["passfile"])) or ""
            return (*timed([spark_script(SPARK_JDBC) + [str(folder), PGJDBC[-1], url, p.get("user", "postgres"),
                                                         self.quoted(table)]], env=env), table)
        if method in PIPELINES:
            self.execute(sql.SQL("DROP TABLE {}").format(table.identifier()))
            env = {**os.environ, "PIPELINE_PG_DSN": self.dsn, "PIPELINE_STATE_DIR": str(scratch / "state")}
            luigi = str(Path(sys.executable).with_name("luigi"))
            cmd = [luigi, "--module", "pipeline", "IngestTable", "--table", str(table), "--source", str(folder),
                   "--chunk-rows", str(chunk_rows), "--workers", "2", "--local-scheduler",
                   "--export-engine", "arrow" if method.startswith("pipeline-arrow") else "spark",
                   "--export-chunk-format", "binary" if method.endswith("-binary") else "csv"]
            if method == "pipeline-arrow-budget":  # a bad-row budget, though no row is bad
                cmd += ["--max-bad-rows", "100"]
            return (*timed([cmd], env=env), table)
        raise ValueError(method)

    def append_one(self, folder: Path, engine: str) -> tuple[float, float, int]:
        """(seconds of the first load of ``folder``'s files in append mode, seconds to append the next minute file
        to it, rows in the table afterwards)."""
        src = self.work / f"append-{engine}" / "src"
        shutil.rmtree(src.parent, ignore_errors=True)
        src.mkdir(parents=True)
        files = list_files(folder)
        for f in files:
            (src / f.name).symlink_to(folder / f.name)
        table = TableName("bench", f"append_{engine}")
        self.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table.identifier()))
        env = {**os.environ, "PIPELINE_PG_DSN": self.dsn, "PIPELINE_STATE_DIR": str(src.parent / "state")}
        cmd = [str(Path(sys.executable).with_name("luigi")), "--module", "pipeline", "IngestTable", "--table",
               str(table), "--source", str(src), "--mode", "append", "--chunk-rows", "1000000", "--workers", "2",
               "--local-scheduler", "--export-engine", engine]
        first, *_ = timed([cmd], env=env)
        sample.generate(src, 1, first=len(files))
        seconds, *_ = timed([cmd], env=env)
        return first, seconds, self.execute(sql.SQL("SELECT count(*) FROM {}").format(table.identifier()))[0][0]

    def scan_seconds(self, method: str) -> float | None:
        """How long the last ``method`` run's verification scan took (``VerifyRowCount``), if it has one."""
        found = list((self.work / method / "state").glob("**/verified.json"))
        return json.loads(found[0].read_text()).get("scan_seconds") if len(found) == 1 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 5_000_000],
                        help="sizes of the wide typed dataset")
    parser.add_argument("--minutes", type=int, nargs="*", default=[1440],
                        help="minute-file datasets of the original shape (number of files)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--methods", nargs="+",
                        default=["copy-1", "copy-2", "binary-2", "adbc", "pgpq-2", "spark-csv-serial", "spark-jdbc",
                                 *PIPELINES, "append"])
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/bench.md"))
    args = parser.parse_args(argv)
    dsn = client.target_dsn()
    bench = Bench(dsn, config.state_dir() / "bench" / "work")
    if "spark-jdbc" in args.methods and not PGJDBC:
        print("spark-jdbc skipped: no pgjdbc jar in ~/.m2 or /usr/share/java")
        args.methods.remove("spark-jdbc")
    for method, module in (("adbc", "adbc_driver_postgresql"), ("pgpq-2", "pgpq")):
        if method in args.methods and importlib.util.find_spec(module) is None:
            print(f"{method} skipped: {module} is not installed (pip install '.[bench]')")
            args.methods.remove(method)
    lines = [f"machine: {os.cpu_count()} cores, {_mem_gib()} GiB; PostgreSQL at {client.describe(dsn)}; "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; repeat {args.repeat} (median)", "",
             "| dataset | method | seconds | rows/s | × COPY limit (copy-2) | verify scan s (share) "
             "| peak MiB (process tree) | CPU s, all cores (cores busy) | exact |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    datasets = [("wide", n) for n in args.rows] + [("minutes", n) for n in args.minutes]
    appended = []
    for kind, size in datasets:
        folder = dataset(kind, size)
        plan = make_plan(Load("bench.x", str(folder), 1, fingerprint(list_files(folder))))
        rows = plan.total_rows
        chunk_rows = 500_000 if kind == "wide" else 1_000_000
        reference = None
        results = {}
        # The pipeline runs first: its verified load is the reference and the COPY limit's CSV.
        for method in ["pipeline"] + [m for m in args.methods if m not in ("pipeline", "append")]:
            runs = []
            for _ in range(args.repeat):
                seconds, peak, cpu, table = bench.run(method, folder, plan, chunk_rows)
                runs.append((seconds, peak, bench.scan_seconds(method), cpu))
            seconds, cpu = statistics.median(r[0] for r in runs), statistics.median(r[3] for r in runs)
            peak = max(r[1] for r in runs)
            scans = [r[2] for r in runs if r[2] is not None]
            scan = f"{statistics.median(scans):.1f} ({statistics.median(scans) / seconds:.0%})" if scans else "-"
            stats = bench.stats(table, plan.columns)
            if method == "pipeline":
                reference = stats
                copy_inputs(dsn, table, bench.work / "csv", whole="copy-1" in args.methods)
            exact = "yes" if stats == reference else ("rows only" if stats.rows == rows else "NO")
            bench.execute(sql.SQL("DROP TABLE {}").format(table.identifier()))  # the full set: ~8 GB a table
            results[method] = (seconds, peak, exact, scan, cpu)
        limit = results.get("copy-2", (None,))[0]
        for method in [m for m in args.methods if m in results] + [m for m in results if m not in args.methods]:
            seconds, peak, exact, scan, cpu = results[method]  # the reference ("pipeline") too, as it ran
            ratio = f"{seconds / limit:.2f}" if limit else "-"
            line = (f"| {kind} {rows:,} | {method} | {seconds:.1f} | {rows / seconds:,.0f} | {ratio} | {scan} | "
                    f"{peak or '-'} | {cpu:.1f} ({cpu / seconds:.2f}) | {exact} |")
            lines.append(line)
            print(line, flush=True)
        if kind == "minutes" and "append" in args.methods:
            appended.extend((size, engine, *bench.append_one(folder, engine), rows) for engine in ("spark", "arrow"))
    if appended:
        lines += ["", "| table of | engine | full load s | append 1 minute file s | share of the full load "
                      "| rows after |", "|---|---|---:|---:|---:|---|"]
        for size, engine, first, seconds, after, rows in appended:
            check = "yes" if after == rows + sample.SENSORS else f"NO ({after:,})"
            lines.append(f"| {size:,} files, {rows:,} rows | {engine} | {first:.1f} | {seconds:.1f} | "
                         f"{seconds / first:.1%} | {after:,} (+{sample.SENSORS:,}: {check}) |")
        print("\n".join(lines[-len(appended) - 3:]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def _mem_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


if __name__ == "__main__":
    raise SystemExit(main())
