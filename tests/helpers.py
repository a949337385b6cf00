"""Helpers shared by the tests: run the real CLI, build Parquet folders, compare a table with its source."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg2 import sql

REPO = Path(__file__).resolve().parent.parent
LUIGI = str(Path(sys.executable).with_name("luigi"))


def luigi_cmd(*args: str, scheduler_port: int | None = None) -> list[str]:
    """``luigi --module pipeline ARGS`` on the local scheduler, or on the luigid at 127.0.0.1:``scheduler_port``."""
    scheduler = (["--scheduler-host", "127.0.0.1", "--scheduler-port", str(scheduler_port)] if scheduler_port
                 else ["--local-scheduler"])
    return [LUIGI, "--module", "pipeline", *args, *scheduler]


def _ingest_args(source: Path, table: str, chunk_rows: int, *extra: str) -> list[str]:
    return ["IngestTable", "--table", table, "--source", str(source), "--chunk-rows", str(chunk_rows), *extra]


def ingest_cmd(source: Path, table: str, chunk_rows: int, *extra: str, scheduler_port: int | None = None) -> list[str]:
    return luigi_cmd(*_ingest_args(source, table, chunk_rows, *extra), scheduler_port=scheduler_port)


def run_luigi(env: dict, *args: str, kill_at: str | None = None, scheduler_port: int | None = None,
              timeout: int = 300) -> subprocess.CompletedProcess:
    """``luigi_cmd(ARGS)`` from the repository root, in its own process group."""
    run_env = dict(env)
    if kill_at:
        run_env["PIPELINE_KILL_AT"] = kill_at
    cmd = luigi_cmd(*args, scheduler_port=scheduler_port)
    proc = subprocess.Popen(cmd, cwd=REPO, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"luigi timed out after {timeout} s:\n{out}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def ingest(env: dict, source: Path, table: str, chunk_rows: int, *extra: str, **kw) -> subprocess.CompletedProcess:
    return run_luigi(env, *_ingest_args(source, table, chunk_rows, *extra), **kw)


def run_cli(env: dict, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` from the repository root, its output and errors together."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout[-6000:]}"
    return result.stdout


def query(dsn: str, statement, params=None) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def assert_clear_failure(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """A failure as users should see it: non-zero exit, no traceback, one ERROR line holding every phrase."""
    assert result.returncode not in (0, -9), result.stdout
    assert "Traceback" not in result.stdout, result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stdout
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


def table_exists(dsn: str, schema: str, name: str) -> bool:
    return bool(query(dsn, "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s", (schema, name)))


def _normal(value):
    """One comparable form for values from pyarrow and from psycopg2."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, float):
        return ("float", repr(value))  # keeps NaN equal to NaN and -0.0 apart from 0.0
    return value


def _as_loaded(table: pa.Table) -> pa.Table:
    """Nested columns as the jsonb text they load as (``nested.json_texts``, itself tested against
    PostgreSQL's own output); dates as days and timestamps and times as microseconds since 1970 or
    midnight, as ``assert_table_matches`` reads them (Python's datetime ends at year 9999, PostgreSQL's
    at 294276 AD); half-precision floats widened."""
    from pipeline.types.nested import is_nested, json_texts

    for i, field in enumerate(table.schema):
        t, values = field.type, table.column(i).combine_chunks()
        if pa.types.is_dictionary(t):
            t, values = t.value_type, values.dictionary_decode()
        if is_nested(t):
            values = json_texts(values, field.name)
        elif pa.types.is_date(t):
            values = values.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
        elif pa.types.is_timestamp(t) and t.unit != "ns":
            values = values.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
        elif pa.types.is_time(t) and t.unit != "ns":
            values = values.cast(pa.time64("us")).cast(pa.int64())
        elif pa.types.is_float16(t):
            values = values.cast(pa.float64())
        table = table.set_column(i, field.name, values)
    return table


def source_rows(folder: Path) -> tuple[list[str], Counter]:
    tables = [_as_loaded(pq.read_table(p, coerce_int96_timestamp_unit="us")) for p in sorted(folder.iterdir())
              if not p.name.startswith((".", "_"))]
    columns = tables[0].column_names
    rows: Counter = Counter()
    for t in tables:
        rows.update(tuple(_normal(v) for v in row.values()) for row in t.to_pylist())
    return columns, rows


def assert_table_matches(dsn: str, schema: str, name: str, folder: Path) -> None:
    """The loaded table holds exactly the source's rows, value by value (as a multiset)."""
    columns, expected = source_rows(folder)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT attname, atttypid::regtype::text FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                        (sql.Identifier(schema, name).as_string(conn),))
            # real is read widened to double precision, exactly as pyarrow widens float32; jsonb as its text;
            # dates, timestamps and times as integers (see _as_loaded)
            micros = "(extract(epoch FROM {}) * 1000000)::bigint"
            casts = {"real": "{}::float8", "jsonb": "{}::text", "date": "({} - date '1970-01-01')::bigint",
                     "timestamp without time zone": micros, "timestamp with time zone": micros,
                     "time without time zone": micros}
            select = [sql.SQL(casts.get(t, "{}") + " AS {}").format(sql.Identifier(n), sql.Identifier(n))
                      for n, t in cur.fetchall()]
            cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(select), sql.Identifier(schema, name)))
            loaded_columns = [d.name for d in cur.description]
            loaded = Counter(tuple(_normal(v) for v in row) for row in cur.fetchall())
    finally:
        conn.close()
    assert loaded_columns == columns
    missing, extra = expected - loaded, loaded - expected
    assert not missing and not extra, f"missing rows: {list(missing)[:5]}; unexpected rows: {list(extra)[:5]}"
    assert sum(loaded.values()) == sum(expected.values())


AWKWARD = [
    'plain', '', None, ' leading', 'trailing ', '  both  ', 'a "quoted" word', '"', '""', 'comma, inside',
    'line\nfeed', 'carriage\rreturn', 'crlf\r\nend', '\ttab\t', 'back\\slash', '\\N', 'NULL', 'null', 'N',
    'unicode: é ñ 中文 😀 \u200b \u0301', "semi;colon 'single'", ',', '\n', '\r\n', ' ', '\\', '\\.',
]


def write_awkward(folder: Path, files: int = 3, rows_per_file: int = 400, first: int = 0) -> None:
    """Files of awkward strings and microsecond timestamps, deterministic."""
    folder.mkdir(parents=True, exist_ok=True)
    base = dt.datetime(2023, 1, 1, 0, 0, 0)
    for f in range(first, first + files):
        ids = list(range(f * rows_per_file, (f + 1) * rows_per_file))
        text = [AWKWARD[i % len(AWKWARD)] for i in ids]
        other = [None if i % 7 == 0 else AWKWARD[(i * 5) % len(AWKWARD)] for i in ids]
        ts = [base + dt.timedelta(seconds=i * 37, microseconds=(i * 999_983) % 1_000_000) for i in ids]
        tz = [None if i % 11 == 0 else t.replace(tzinfo=dt.UTC) for i, t in zip(ids, ts, strict=True)]
        table = pa.table({
            "id": pa.array(ids, pa.int64()),
            "text": pa.array(text, pa.string()),
            "other text": pa.array(other, pa.string()),
            "ts": pa.array(ts, pa.timestamp("us")),
            "tz": pa.array(tz, pa.timestamp("us", tz="UTC")),
        })
        pq.write_table(table, folder / f"part {f:03d}.parquet")
