"""The methods the benchmark times as whole processes, beside the pipeline: the COPY limit (``psql \\copy``) of
CSV and of binary files, the two original solutions (Spark's CSV writer then COPY, Spark's JDBC writer) and
the unverified loaders a user would pick instead (ADBC's ``adbc_ingest``; a pyarrow -> pgpq -> binary COPY
script, two processes)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tree_rss_mib(root: int) -> int:
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


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores (``/proc/stat``): over a method, the work of
    its processes and of the PostgreSQL backends serving them, nothing else running."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def timed(cmds: list[list[str]], env: dict | None = None) -> tuple[float, int, float]:
    """(seconds, peak resident memory of the whole process tree in MiB, busy CPU seconds of the machine) of
    commands run at once."""
    logs = [tempfile.TemporaryFile("w+") for _ in cmds]
    busy = busy_cpu_seconds()
    started = time.monotonic()
    procs = [subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
             for cmd, log in zip(cmds, logs, strict=True)]
    peak = 0
    while any(p.poll() is None for p in procs):
        peak = max(peak, sum(tree_rss_mib(p.pid) for p in procs))
        time.sleep(0.2)
    seconds, busy = time.monotonic() - started, busy_cpu_seconds() - busy
    for proc, cmd, log in zip(procs, cmds, logs, strict=True):
        if proc.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:6])} failed:\n{log.read()[-3000:]}")
        log.close()
    return seconds, peak, busy


# libpq's environment variables for the DSN parameters: the commands get the DSN this way, so no command line
# (which every local user sees in ps) shows it, nor a password in it.
LIBPQ_ENV = {"host": "PGHOST", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER", "password": "PGPASSWORD",
             "passfile": "PGPASSFILE", "options": "PGOPTIONS", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
             "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}


def libpq_env(dsn: str) -> dict[str, str]:
    """The environment that points libpq clients (psql, psycopg2.connect("")) at ``dsn``."""
    import psycopg2.extensions

    params = psycopg2.extensions.parse_dsn(dsn)
    unknown = sorted(set(params) - set(LIBPQ_ENV))
    if unknown:
        raise ValueError(f"the benchmark cannot pass DSN parameter(s) {', '.join(unknown)} to its commands")
    return {**os.environ, **{LIBPQ_ENV[key]: value for key, value in params.items()}}


def psql_copy(table: str, path: Path, form: str = "csv") -> list[str]:
    """psql's \\copy of ``path`` (CSV, or PostgreSQL's ``binary`` COPY format) into ``table`` (quoted already);
    the path as a quoted literal. The database comes from the environment (``libpq_env``)."""
    literal = "'" + str(path).replace("'", "''") + "'"
    return ["psql", "-v", "ON_ERROR_STOP=1", "-qc", f"\\copy {table} FROM {literal} WITH (FORMAT {form})"]


def spark_script(body: str) -> list[str]:
    return [sys.executable, "-c", "import sys, os\n" + body]


SPARK_CSV_SERIAL = """
from pyspark.sql import SparkSession
import glob, psycopg2
from psycopg2 import sql
src, out, schema, name = sys.argv[1:5]
spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
spark.read.parquet(src).write.mode("overwrite").csv(out)
spark.stop()
conn = psycopg2.connect("")  # the database from libpq's environment
with conn.cursor() as cur:
    for part in sorted(glob.glob(out + "/part-*.csv")):
        with open(part) as f:
            cur.copy_expert(sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(sql.Identifier(schema, name)), f)
conn.commit()
"""

SPARK_JDBC = """
from pyspark.sql import SparkSession
src, jar, url, user, table = sys.argv[1:6]  # the password in PGPASSWORD
spark = (SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
         .config("spark.jars", jar).config("spark.sql.session.timeZone", "UTC").getOrCreate())
(spark.read.parquet(src).write.mode("append")
 .jdbc(url, table, properties={"user": user, "password": os.environ.get("PGPASSWORD", ""),
                               "driver": "org.postgresql.Driver", "batchsize": "10000"}))
spark.stop()
"""

ADBC = """
import adbc_driver_postgresql.dbapi as dbapi
import pyarrow.dataset as ds
src, schema, name = sys.argv[1:4]
reader = ds.dataset(src, format="parquet").scanner(batch_size=131072).to_reader()
with dbapi.connect("postgresql://") as conn:  # the database from libpq's environment
    with conn.cursor() as cur:
        cur.adbc_ingest(name, reader, mode="append", db_schema_name=schema)
    conn.commit()
"""

# One process of the pgpq script: the given files, in order, as one binary COPY.
PGPQ = """
import psycopg2, pyarrow.parquet as pq
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg2 import sql
schema, name, *files = sys.argv[1:]
def pieces():
    encoder = None
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(131072):
            if encoder is None:
                encoder = ArrowToPostgresBinaryEncoder(batch.schema)
                yield encoder.write_header()
            yield encoder.write_batch(batch)
    yield encoder.finish()
class Stream:
    def __init__(self, chunks):
        self.chunks = chunks
    def read(self, size=-1):  # an empty piece would end the COPY: the encoder returns some for small batches
        return next((piece for piece in self.chunks if piece), b"")
conn = psycopg2.connect("")  # the database from libpq's environment
with conn.cursor() as cur:
    cur.copy_expert(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(schema, name)),
                    Stream(pieces()))
conn.commit()
"""
