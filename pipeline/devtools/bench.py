"""``make bench`` / ``python -m pipeline.bench``: our pipeline against the raw COPY limit and the
two original solutions, on one PostgreSQL server, in one run.

Methods (each loads the same dataset into an empty table, timed as a whole process):

* ``copy-1`` / ``copy-2``: ``psql \\copy`` of ready CSV files, one file, or two halves at once
  (the COPY limit; the CSV is made once by ``COPY ... TO`` from a loaded table);
* ``spark-csv-serial`` (original solution 2): Spark's CSV writer, then one COPY per part file;
* ``spark-jdbc`` (original solution 1): Spark's JDBC writer with the pgjdbc jar;
* ``pipeline`` / ``pipeline-arrow``: ``luigi --module pipeline IngestTable`` cold, with a fresh state
  dir, with the Spark or the Arrow export engine.

Every result is checked against the source by row count and the content statistics of
``verify`` (a lossy method shows ``exact = no``). Datasets are generated deterministically
and cached under ``<state_dir>/bench/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg2 import sql

from . import pg, sample, settings, verify
from .source import fingerprint, list_files, make_plan

PGJDBC = sorted(glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/postgresql/*/postgresql-*.jar"))
                + glob.glob("/usr/share/java/postgresql*.jar"))


# --- datasets -----------------------------------------------------------------------------------------------

def wide_batch(start: int, n: int) -> pa.Table:
    """Rows start..start+n of the wide typed table: 14 columns, NULLs, awkward text, µs and tz timestamps."""
    ids = pa.array(range(start, start + n), pa.int64())

    def nulls_every(k: int, values: pa.Array) -> pa.Array:
        return pc.if_else(pc.equal(pc.bit_wise_and(ids, k - 1), 0), pa.scalar(None, values.type), values)

    base = pa.scalar(dt.datetime(2023, 1, 1), pa.timestamp("us"))
    micros = pc.multiply(ids, 1_000_003)
    ts = pc.add(base, pc.cast(micros, pa.duration("us")))
    text = pc.binary_join_element_wise("name ", pc.cast(pc.bit_wise_and(ids, 65535), pa.string()), ' "q", x', "")
    return pa.table({
        "id": ids,
        "qty": pc.cast(pc.bit_wise_and(ids, 1023), pa.int32()),
        "small": pc.cast(pc.subtract(pc.bit_wise_and(ids, 255), 128), pa.int16()),
        "flag": pc.equal(pc.bit_wise_and(ids, 1), 0),
        "price": nulls_every(16, pc.cast(pc.divide(pc.cast(pc.bit_wise_and(micros, 1048575), pa.float64()), 100),
                                         pa.decimal128(12, 2), safe=False)),
        "rate": pc.cast(pc.divide(pc.cast(pc.bit_wise_and(ids, 999999), pa.float64()), 1e6), pa.decimal128(18, 6),
                        safe=False),
        "f32": pc.cast(pc.divide(pc.cast(ids, pa.float64()), 7.0), pa.float32()),
        "f64": nulls_every(8, pc.divide(pc.cast(ids, pa.float64()), 3.0)),
        "name": text,
        "note": nulls_every(4, pc.binary_join_element_wise(" lead ", pc.cast(ids, pa.string()), " trail\ttab ", "")),
        "day": pc.cast(ts, pa.date32()),
        "ts": ts,
        "tstz": pc.assume_timezone(ts, "UTC"),
        "code": pc.cast(pc.bit_wise_and(ids, 7), pa.string()),
    })


def dataset(kind: str, size: int) -> Path:
    """The cached dataset folder: ``wide`` (size = rows, files of 500,000) or ``minutes`` (size = files)."""
    folder = settings.state_dir() / "bench" / f"{kind}-{size}"
    if (folder / "_done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kind == "minutes":
        sample.generate(folder, size)
    else:
        per_file = 500_000
        for start in range(0, size, per_file):
            batch = wide_batch(start, min(per_file, size - start))
            pq.write_table(batch, folder / f"part-{start // per_file:04d}.parquet")
    (folder / "_done").write_text("")
    return folder


# --- methods ------------------------------------------------------------------------------------------------

def _tree_rss_mib(root: int) -> int:
    """Resident memory of a process and all its descendants, MiB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pid = int(stat.split("/")[2])
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total >> 20


def _timed(cmds: list[list[str]], env: dict | None = None) -> tuple[float, int]:
    """(seconds, peak resident memory of the whole process tree in MiB) of commands run at once."""
    logs = [tempfile.TemporaryFile("w+") for _ in cmds]
    started = time.monotonic()
    procs = [subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
             for cmd, log in zip(cmds, logs, strict=True)]
    peak = 0
    while any(p.poll() is None for p in procs):
        peak = max(peak, sum(_tree_rss_mib(p.pid) for p in procs))
        time.sleep(0.2)
    seconds = time.monotonic() - started
    for proc, cmd, log in zip(procs, cmds, logs, strict=True):
        if proc.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:6])} failed:\n{log.read()[-3000:]}")
        log.close()
    return seconds, peak


def _psql_copy(dsn: str, table: str, path: Path) -> list[str]:
    return ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-qc", f"\\copy {table} FROM '{path}' WITH (FORMAT csv)"]


def _spark_script(body: str) -> list[str]:
    return [sys.executable, "-c", "import sys, os\n" + body]


SPARK_CSV_SERIAL = """
from pyspark.sql import SparkSession
import glob, psycopg2
src, out, dsn, table = sys.argv[1:5]
spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
spark.read.parquet(src).write.mode("overwrite").csv(out)
spark.stop()
conn = psycopg2.connect(dsn)
with conn.cursor() as cur:
    for part in sorted(glob.glob(out + "/part-*.csv")):
        with open(part) as f:
            cur.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", f)
conn.commit()
"""

SPARK_JDBC = """
from pyspark.sql import SparkSession
src, jar, url, user, table = sys.argv[1:6]
spark = (SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
         .config("spark.jars", jar).config("spark.sql.session.timeZone", "UTC").getOrCreate())
(spark.read.parquet(src).write.mode("append")
 .jdbc(url, table, properties={"user": user, "driver": "org.postgresql.Driver", "batchsize": "10000"}))
spark.stop()
"""


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

    def empty_table(self, name: str, columns) -> str:
        ident = sql.Identifier("bench", name)
        self.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS bench; DROP TABLE IF EXISTS {}").format(ident))
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns)
        self.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, cols))
        return f"bench.{name}"

    def stats(self, table: str, columns) -> dict:
        conn = psycopg2.connect(self.dsn)
        try:
            with pg.transaction(conn, f"measuring {table}") as cur:
                return verify.pg_stats(cur, sql.Identifier(*table.split(".")), columns)
        finally:
            conn.close()

    def run(self, method: str, folder: Path, plan, chunk_rows: int) -> tuple[float, int, str]:
        """Load ``folder`` with ``method``; returns (seconds, peak MiB, loaded table)."""
        table = self.empty_table(method.replace("-", "_"), plan.columns)
        scratch = self.work / method
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        if method in ("copy-1", "copy-2"):
            names = ["all.csv"] if method == "copy-1" else ["half-1.csv", "half-2.csv"]
            return (*_timed([_psql_copy(self.dsn, table, self.work / "csv" / n) for n in names]), table)
        if method == "spark-csv-serial":
            return (*_timed([_spark_script(SPARK_CSV_SERIAL) + [str(folder), str(scratch / "csv"), self.dsn, table]]),
                    table)
        if method == "spark-jdbc":
            p = psycopg2.extensions.parse_dsn(self.dsn)
            url = f"jdbc:postgresql://{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"
            return (*_timed([_spark_script(SPARK_JDBC) + [str(folder), PGJDBC[-1], url, p.get("user", "postgres"),
                                                          table]]), table)
        if method in ("pipeline", "pipeline-arrow"):
            self.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(*table.split("."))))
            env = {**os.environ, "PIPELINE_PG_DSN": self.dsn, "PIPELINE_STATE_DIR": str(scratch / "state")}
            luigi = str(Path(sys.executable).with_name("luigi"))
            cmd = [luigi, "--module", "pipeline", "IngestTable", "--table", table, "--source", str(folder),
                   "--chunk-rows", str(chunk_rows), "--workers", "2", "--local-scheduler",
                   "--export-engine", "arrow" if method == "pipeline-arrow" else "spark"]
            return (*_timed([cmd], env=env), table)
        raise ValueError(method)

    def scan_seconds(self, method: str) -> float | None:
        """How long the last ``method`` run's verification scan took (``VerifyRowCount``), if it has one."""
        found = list((self.work / method / "state").glob("**/verified.json"))
        return json.loads(found[0].read_text()).get("scan_seconds") if len(found) == 1 else None

    def make_csv(self, table: str) -> None:
        """The COPY limit's input: the loaded rows as one CSV file and as two halves."""
        folder = self.work / "csv"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.chmod(folder, 0o777)
        conn = psycopg2.connect(self.dsn)
        with conn.cursor() as cur, open(folder / "all.csv", "w") as f:
            cur.copy_expert(f"COPY {table} TO STDOUT WITH (FORMAT csv)", f)
        conn.close()
        with open(folder / "all.csv", "rb") as src, open(folder / "half-1.csv", "wb") as a, \
                open(folder / "half-2.csv", "wb") as b:
            size = os.fstat(src.fileno()).st_size
            a.write(src.read(size // 2) + src.readline())
            shutil.copyfileobj(src, b, 4 << 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000],
                        help="sizes of the wide typed dataset")
    parser.add_argument("--minutes", type=int, nargs="*", default=[1440],
                        help="minute-file datasets of the original shape (number of files)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--methods", nargs="+",
                        default=["copy-1", "copy-2", "spark-csv-serial", "spark-jdbc", "pipeline", "pipeline-arrow"])
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/bench.md"))
    args = parser.parse_args(argv)
    dsn = pg.target_dsn()
    bench = Bench(dsn, settings.state_dir() / "bench" / "work")
    if "spark-jdbc" in args.methods and not PGJDBC:
        print("spark-jdbc skipped: no pgjdbc jar in ~/.m2 or /usr/share/java")
        args.methods.remove("spark-jdbc")
    lines = [f"machine: {os.cpu_count()} cores, {_mem_gib()} GiB; PostgreSQL at {pg.describe(dsn)}; "
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; repeat {args.repeat} (median)", "",
             "| dataset | method | seconds | rows/s | × COPY limit (copy-2) | verify scan s (share) "
             "| peak MiB (process tree) | exact |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    datasets = [("wide", n) for n in args.rows] + [("minutes", n) for n in args.minutes]
    for kind, size in datasets:
        folder = dataset(kind, size)
        plan = make_plan("bench", "bench.x", str(folder), fingerprint(list_files(folder)), 1)
        rows = plan.total_rows
        chunk_rows = 500_000 if kind == "wide" else 1_000_000
        reference = None
        results = {}
        # The pipeline runs first: its verified load is the reference and the COPY limit's CSV.
        for method in ["pipeline"] + [m for m in args.methods if m != "pipeline"]:
            runs = []
            for _ in range(args.repeat):
                seconds, peak, table = bench.run(method, folder, plan, chunk_rows)
                runs.append((seconds, peak, bench.scan_seconds(method)))
            seconds = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            scans = [r[2] for r in runs if r[2] is not None]
            scan = f"{statistics.median(scans):.1f} ({statistics.median(scans) / seconds:.0%})" if scans else "-"
            stats = bench.stats(table, plan.columns)
            if method == "pipeline":
                reference = stats
                bench.make_csv(table)
            exact = "yes" if stats == reference else ("rows only" if stats["rows"] == rows else "NO")
            results[method] = (seconds, peak, exact, scan)
        limit = results.get("copy-2", (None,))[0]
        for method in args.methods:
            if method not in results:
                continue
            seconds, peak, exact, scan = results[method]
            ratio = f"{seconds / limit:.2f}" if limit else "-"
            line = (f"| {kind} {rows:,} | {method} | {seconds:.1f} | {rows / seconds:,.0f} | {ratio} | {scan} | "
                    f"{peak or '-'} | {exact} |")
            lines.append(line)
            print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def _mem_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


if __name__ == "__main__":
    raise SystemExit(main())
