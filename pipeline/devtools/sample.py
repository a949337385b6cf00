"""Deterministic generator of the original ``product.product_master`` data, one Parquet file a minute.

The shape follows the project this one replaces: 100 departments with 5-29 sensors each,
1,914 sensors in all, one row per sensor per minute from 2023-01-01 00:00; columns
department_name (32 letters), sensor_serial (64 letters), create_at (the file's minute,
naive, microseconds), product_name (16 letters, ~1,000 distinct) and product_expire
(create_at + 87, 88 or 89 days). File names carry a space: ``2023-01-01 00-00-00.parquet``.
43,201 minutes give the full 82,686,714 rows.

    python -m pipeline.devtools.sample --minutes N --out FOLDER
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import string
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

START = dt.datetime(2023, 1, 1)
FULL_MINUTES = 43_201
SENSORS = 1_914
SCHEMA = pa.schema([
    ("department_name", pa.string()),
    ("sensor_serial", pa.string()),
    ("create_at", pa.timestamp("us")),
    ("product_name", pa.string()),
    ("product_expire", pa.timestamp("us")),
])


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=n))


def _sensors(rng: random.Random) -> tuple[list[str], list[str]]:
    counts = [rng.randint(5, 29) for _ in range(100)]
    while sum(counts) != SENSORS:  # nudge counts until they sum to 1,914, staying in 5..29
        i = rng.randrange(100)
        step = 1 if sum(counts) < SENSORS else -1
        if 5 <= counts[i] + step <= 29:
            counts[i] += step
    departments = [_word(rng, 32) for _ in range(100)]
    dept_col = [d for d, c in zip(departments, counts, strict=True) for _ in range(c)]
    serials = [_word(rng, 64) for _ in range(SENSORS)]
    return dept_col, serials


def file_name(minute: int) -> str:
    return (START + dt.timedelta(minutes=minute)).strftime("%Y-%m-%d %H-%M-%S.parquet")


def minute_table(minute: int, departments: pa.Array, serials: pa.Array, products: pa.Array) -> pa.Table:
    rng = random.Random(minute)
    created = START + dt.timedelta(minutes=minute)
    product_idx = pa.array(rng.choices(range(len(products)), k=SENSORS), pa.int32())
    expire_days = {d: created + dt.timedelta(days=d) for d in (87, 88, 89)}
    expire = pa.array([expire_days[d] for d in rng.choices((87, 88, 89), k=SENSORS)], pa.timestamp("us"))
    return pa.table([departments, serials, pa.array([created] * SENSORS, pa.timestamp("us")),
                     products.take(product_idx), expire], schema=SCHEMA)


def generate(out: Path, minutes: int, first: int = 0) -> int:
    """Write minute files ``first .. first+minutes-1`` into ``out`` (existing ones are kept); return rows."""
    rng = random.Random(20230101)
    dept_col, serial_col = _sensors(rng)
    departments, serials = pa.array(dept_col), pa.array(serial_col)
    products = pa.array([_word(rng, 16) for _ in range(1_000)])
    out.mkdir(parents=True, exist_ok=True)
    for minute in range(first, first + minutes):
        path = out / file_name(minute)
        if path.exists():
            continue
        tmp = out / f".{path.name}.tmp"
        pq.write_table(minute_table(minute, departments, serials, products), tmp)
        os.replace(tmp, path)
    return minutes * SENSORS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=5, help=f"files to write (full set: {FULL_MINUTES})")
    parser.add_argument("--first", type=int, default=0, help="index of the first minute")
    parser.add_argument("--out", type=Path, default=Path("data_sample"))
    args = parser.parse_args(argv)
    rows = generate(args.out, args.minutes, args.first)
    print(f"{args.out}: {args.minutes:,} minute files, {rows:,} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
