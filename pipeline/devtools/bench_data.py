"""The benchmark's datasets, generated deterministically and cached under ``<state_dir>/bench/``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg2 import sql

from .. import config
from . import sample


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
    folder = config.state_dir() / "bench" / f"{kind}-{size}"
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


def copy_inputs(dsn: str, table, folder: Path, whole: bool = True) -> None:
    """The COPY limit's input, from a loaded table: its rows as one CSV file (``whole``: kept for ``copy-1``) and as
    two halves, and as two halves in the binary COPY format (the table's first and second half of pages)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.chmod(folder, 0o777)
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur, open(folder / "all.csv", "w") as f:
            cur.copy_expert(sql.SQL("COPY {} TO STDOUT WITH (FORMAT csv)").format(table.identifier()), f)
        with open(folder / "all.csv", "rb") as src, open(folder / "half-1.csv", "wb") as a, \
                open(folder / "half-2.csv", "wb") as b:
            size = os.fstat(src.fileno()).st_size
            a.write(src.read(size // 2) + src.readline())
            shutil.copyfileobj(src, b, 4 << 20)
        if not whole:  # the full set's is 6 GB
            os.unlink(folder / "all.csv")
        with conn.cursor() as cur:
            cur.execute("SELECT greatest(relpages, 1) FROM pg_class WHERE oid = %s::regclass",
                        (table.identifier().as_string(conn),))
            middle = f"({cur.fetchone()[0] // 2},0)"
            for n, op in ((1, "<"), (2, ">=")):
                with open(folder / f"half-{n}.bin", "wb") as f:
                    query = sql.SQL("SELECT * FROM {} WHERE ctid " + op + " {}::tid").format(
                        table.identifier(), sql.Literal(middle))
                    cur.copy_expert(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT binary)").format(query), f)
    finally:
        conn.close()
