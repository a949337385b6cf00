"""The source side of verification over one Arrow record batch: its ``Stats``, with either row hash
(see ``rowhash``). The per-batch core (``engines.core``) runs it on every batch either engine exports, with
the "typed" hash; the "md5" one serves the refused rows of loads exported by earlier versions."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..types import nested, temporal
from ..types.mapping import Column, Kind, csv_order
from ..types.text import days_or_micros, micros, text
from .pghash import exact_sum, float_hash_sum, float_hashes, hash_extended, int8_hashes, uint32_hashes
from .rowhash import Checksum, HashKind, hash_kind
from .stats import ColumnStats, FloatStats, Refusal, Stats

PG_EPOCH_DAYS, PG_EPOCH_MICROS = 10_957, 946_684_800_000_000  # 2000-01-01, PostgreSQL's epoch, after 1970's


def outside_postgres(values: pa.Array) -> pa.Array:
    """Per value: whether the date or timestamp lies outside PostgreSQL's range (from 4714-11-24 BC; dates to
    5874897 AD; microsecond timestamps cannot pass its end, 294276 AD); NULL for NULL."""
    keys = days_or_micros(values)
    if pa.types.is_date(values.type):
        return pc.or_(pc.less(keys, temporal.MIN_DAYS), pc.greater(keys, temporal.MAX_DATE_DAYS))
    return pc.less(keys, temporal.MIN_DAYS * temporal.DAY_MICROS)


def _int_keys(values: pa.Array, kind: HashKind) -> np.ndarray:
    """The integer PostgreSQL stores for each value of an integer-like hash kind (0 for NULL)."""
    if kind in (HashKind.BOOL, HashKind.INT4):
        return values.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    if kind == HashKind.DATE:
        days = values.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        return days - np.int32(PG_EPOCH_DAYS)
    if kind == HashKind.TIME:
        return micros(values, pa.time64("us")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    if kind in (HashKind.TIMESTAMP, HashKind.TIMESTAMPTZ):
        since = micros(values, pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return since - np.int64(PG_EPOCH_MICROS)
    return values.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)  # int8


def typed_hashes(column: Column, values: pa.Array, field: pa.Array, seed: int) -> np.ndarray:
    """The column's part of the "typed" row hash (``postgres.TYPED_HASHES``), 0 for NULL."""
    kind = hash_kind(column)
    if kind == HashKind.FIELD:
        return hash_extended(field, seed)  # "" for NULL, as PostgreSQL's pg_field gives
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if kind == HashKind.TEXT:
        hashed = hash_extended(text(values), seed)
    elif kind == HashKind.FLOAT:
        hashed = float_hashes(values, seed).fill_null(0).to_numpy(zero_copy_only=False)
    elif kind in (HashKind.INT8, HashKind.TIME, HashKind.TIMESTAMP, HashKind.TIMESTAMPTZ):
        hashed = int8_hashes(_int_keys(values, kind), seed)
    else:
        hashed = uint32_hashes(_int_keys(values, kind), seed)
    if values.null_count:
        hashed = np.where(values.is_null().to_numpy(zero_copy_only=False), np.int64(0), hashed)
    return hashed


def md5_checksum(columns: list[Column], fields: list[pa.Array], rows: int) -> int:
    """The "md5" row checksum of a batch: the sum of the first 60 bits of the MD5 of every line's head (its
    fields but the floats). Python, value by value: used only for the rows COPY refused in a load whose chunks an
    earlier version's Spark engine exported (``engines.arrow.rows_stats``)."""
    head = [fields[i] for i in csv_order(columns) if not columns[i].is_float]
    # as bytes: a text value that is not UTF-8 (which COPY refuses) is hashed as Spark hashes it
    lines = pc.binary_join_element_wise(*head, ",").cast(pa.binary()).to_pylist() if head else [b""] * rows
    return sum(int(hashlib.md5(line).hexdigest()[:15], 16) for line in lines)


def _float_stats(values: pa.Array) -> FloatStats:
    nan = pc.is_nan(values)
    nans = pc.sum(nan).as_py() or 0
    numbers = pc.min_max(pc.filter(values, pc.invert(nan)))
    low, high = numbers["min"].as_py(), numbers["max"].as_py()
    # NaN sorts above every number, as in Spark and PostgreSQL
    return FloatStats(values.null_count, {}, nans, math.nan if low is None and nans else low,
                      math.nan if nans else high, float_hash_sum(values))


def refused_values(column: Column, values: pa.Array, field: pa.Array) -> dict[Refusal, pa.Array]:
    """Per refusal the export counts for the column (``counted_refusals``): whether each value is one it refuses."""
    masks = {}
    if column.kind.textual:
        masks[Refusal.NUL] = pc.match_substring(field, "\x00")
    if column.kind == Kind.JSON:
        masks[Refusal.DUPLICATE_KEY] = pc.match_substring(field, nested.DUPLICATE_KEY)
    if column.kind.dated:
        masks[Refusal.OUTSIDE_RANGE] = outside_postgres(values)
    return masks


def _refused(column: Column, values: pa.Array, field: pa.Array) -> dict[Refusal, int]:
    counts = {r: pc.sum(mask).as_py() or 0 for r, mask in refused_values(column, values, field).items()}
    return {r: n for r, n in counts.items() if n}


def batch_stats(columns: list[Column], batch: pa.RecordBatch, fields: list[pa.Array],
                checksum: Checksum = Checksum.TYPED) -> Stats:
    """The statistics of one batch (``fields``: each column's CSV fields) with the row hash ``checksum``."""
    if checksum == Checksum.MD5:
        row_checksum = md5_checksum(columns, fields, batch.num_rows)
    else:
        rows = np.zeros(batch.num_rows, dtype=np.int64)
        for i, c in enumerate(columns):
            rows ^= typed_hashes(c, batch.column(i), fields[i], i + 1)
        row_checksum = exact_sum(rows)
    per_column: list[ColumnStats] = []
    for i, c in enumerate(columns):
        values = batch.column(i)
        s = _float_stats(values) if c.is_float else ColumnStats(values.null_count)
        s.refused = _refused(c, values, fields[i])
        per_column.append(s)
    return Stats(batch.num_rows, row_checksum, per_column)
