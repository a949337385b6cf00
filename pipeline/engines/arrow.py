"""The Arrow engine: the CSV chunk export done in-process with pyarrow, no JVM.

It writes the same chunk files as the Spark engine - one CSV line per row, every non-float
value in PostgreSQL's own text form (see ``typemap``) - and computes the same source
statistics (see ``verify``), except for its row hash: the "typed" one, PostgreSQL's own
hashes of the values' binary forms (``pghash``), cheaper for the server to recompute. Rows
stream through in record batches: memory stays flat however large a chunk or file is.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from . import nested, settings, temporal, verify
from .chunks import Chunk
from .errors import ExportError
from .pghash import exact_sum, float_hash_sum, float_hashes, hash_extended, hash_sum, int8_hashes, uint32_hashes
from .source import Plan
from .typemap import Column, csv_order, is_float

CHECKSUM = "typed"  # the row hash of the checksum (see verify.TYPED_HASHES)
BATCH_ROWS = 131_072


def _text(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.string())


def _plain_decimal(values: pa.Array) -> pa.Array:
    """Decimals as PostgreSQL prints numeric(p, s): plain digits, never Arrow's 1E-10."""
    text = _text(values)
    if not pc.any(pc.match_substring(text, "E")).as_py():
        return text
    return pa.array([None if v is None else format(Decimal(v), "f") for v in text.to_pylist()], pa.string())


def _micros(values: pa.Array, unit: pa.DataType) -> pa.Array:
    """Timestamps or times as ``unit`` (a microsecond type; a zoned timestamp keeps its UTC instant)."""
    if values.type.unit == "ns":  # allowed by [export] truncate_nanoseconds: keep the microseconds, rounded down
        ns = values.cast(pa.int64())
        micros = pc.divide(ns, 1000)  # rounds towards zero: step back one where the remainder is negative
        micros = pc.subtract(micros, pc.cast(pc.less(pc.subtract(ns, pc.multiply(micros, 1000)), 0), pa.int64()))
        values = micros.cast(pa.timestamp("us", values.type.tz) if pa.types.is_timestamp(unit) else unit)
    return pc.cast(values, unit)


def _timestamp(values: pa.Array, unit: pa.DataType) -> pa.Array:
    """[YYYY-MM-DD ]HH:MM:SS[.ffffff without trailing zeros], as PostgreSQL prints a timestamp (in UTC)
    or a time of day; ``unit`` is the microsecond type the values are cast to first."""
    text = _text(_micros(values, unit))
    return pc.ascii_rtrim(pc.ascii_rtrim(text, "0"), ".")


def _quoted(text: pa.Array) -> pa.Array:
    """Text as a CSV field: always quoted, quotes doubled."""
    return pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")


def canonical(column: Column, values: pa.Array) -> pa.Array:
    """The value's CSV field: PostgreSQL's text form, "" for NULL (the Arrow twin of
    ``spark_export.csv_value``)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if column.kind == "text":
        field = _quoted(_text(values))
    elif column.kind == "json":
        field = _quoted(nested.json_texts(values, column.name))
    elif column.kind == "bytea":
        field = pa.array([None if v is None else "\\x" + v.hex() for v in values.to_pylist()], pa.string())
    elif column.kind == "timestamp":
        field = _outside_text_years(values, _timestamp(values, pa.timestamp("us")))
    elif column.kind == "timestamptz":
        field = _outside_text_years(values, pc.binary_join_element_wise(_timestamp(values, pa.timestamp("us")),
                                                                         "+00", ""), "+00")
    elif column.kind == "date":
        field = _outside_text_years(values, _text(values))
    elif column.kind == "time":
        field = _timestamp(values, pa.time64("us"))
    elif pa.types.is_decimal(values.type):
        field = _plain_decimal(values)
    else:
        field = _text(values)
    return pc.fill_null(field, "")


def _days_or_micros(values: pa.Array) -> pa.Array:
    """Days (a date) or microseconds (a timestamp) since 1970 of every value, as int64 (NULL stays NULL)."""
    if pa.types.is_date(values.type):
        return values.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    return _micros(values, pa.timestamp("us")).cast(pa.int64())


def _outside_text_years(values: pa.Array, field: pa.Array, zone: str = "") -> pa.Array:
    """``field`` with the dates or timestamps outside the years 1-9999, which Arrow's text form does not
    cover, written as PostgreSQL prints them (``temporal``): 290000-12-30 23:00:00, 0044-03-15 BC."""
    per_day = 1 if pa.types.is_date(values.type) else temporal.DAY_MICROS
    low, high = temporal.YEAR_1_DAYS * per_day, temporal.YEAR_10000_DAYS * per_day
    keys = _days_or_micros(values)
    extent = pc.min_max(keys)
    if extent["min"].as_py() is None or (extent["min"].as_py() >= low and extent["max"].as_py() < high):
        return field  # the common case: one pass, no values leave Arrow
    texts = field.to_pylist()
    for i, key in enumerate(keys.to_pylist()):
        if key is not None and not low <= key < high:
            texts[i] = temporal.date_text(key) if per_day == 1 else temporal.timestamp_text(key, zone=zone)
    return pa.array(texts, pa.string())


def outside_postgres(values: pa.Array) -> int:
    """How many dates or timestamps lie outside PostgreSQL's range (from 4714-11-24 BC; dates to 5874897 AD;
    microsecond timestamps cannot pass its end, 294276 AD)."""
    keys = _days_or_micros(values)
    if pa.types.is_date(values.type):
        outside = pc.or_(pc.less(keys, temporal.MIN_DAYS), pc.greater(keys, temporal.MAX_DATE_DAYS))
    else:
        outside = pc.less(keys, temporal.MIN_DAYS * temporal.DAY_MICROS)
    return pc.sum(outside).as_py() or 0


PG_EPOCH_DAYS, PG_EPOCH_MICROS = 10_957, 946_684_800_000_000  # 2000-01-01, PostgreSQL's epoch, after 1970's


def _int_keys(values: pa.Array, kind: str) -> np.ndarray:
    """The integer PostgreSQL stores for each value of a "typed" hash kind (0 for NULL)."""
    if kind in ("bool", "int4"):
        return values.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    if kind == "date":
        days = values.cast(pa.date32()).cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        return days - np.int32(PG_EPOCH_DAYS)
    if kind == "time":
        return _micros(values, pa.time64("us")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    if kind in ("timestamp", "timestamptz"):
        micros = _micros(values, pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return micros - np.int64(PG_EPOCH_MICROS)
    return values.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)  # int8


def typed_hashes(column: Column, values: pa.Array, field: pa.Array, seed: int) -> np.ndarray:
    """The column's part of the "typed" row hash (``verify.TYPED_HASHES``), 0 for NULL."""
    kind = verify.hash_kind(column)
    if kind == "field":
        return hash_extended(field, seed)  # "" for NULL, as PostgreSQL's pg_field gives
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if kind == "text":
        hashed = hash_extended(_text(values), seed)
    elif kind == "float":
        hashed = float_hashes(values, seed).fill_null(0).to_numpy(zero_copy_only=False)
    elif kind in ("int8", "time", "timestamp", "timestamptz"):
        hashed = int8_hashes(_int_keys(values, kind), seed)
    else:
        hashed = uint32_hashes(_int_keys(values, kind), seed)
    if values.null_count:
        hashed = np.where(values.is_null().to_numpy(zero_copy_only=False), np.int64(0), hashed)
    return hashed


def md5_checksum(columns: list[Column], fields: list[pa.Array], rows: int) -> int:
    """The Spark engine's row checksum (``verify``'s "md5") of a batch: the sum of the first 60 bits of the
    MD5 of every line's head (its fields but the floats). Python, value by value: used only for the
    chunks the Spark engine hands to pyarrow (see ``spark_export.export_chunk``)."""
    head = [fields[i] for i in csv_order(columns) if not is_float(columns[i])]
    lines = pc.binary_join_element_wise(*head, ",").to_pylist() if head else [""] * rows
    return sum(int(hashlib.md5(line.encode()).hexdigest()[:15], 16) for line in lines)


def batch_stats(columns: list[Column], batch: pa.RecordBatch, fields: list[pa.Array], checksum: str = CHECKSUM) -> dict:
    """The statistics of ``verify`` for one batch (``fields``: each column's CSV fields, see ``_lines``) with
    the row hash ``checksum`` names; ``verify.combine`` adds batches and chunks up."""
    if checksum == "md5":
        row_checksum = md5_checksum(columns, fields, batch.num_rows)
    else:
        rows = np.zeros(batch.num_rows, dtype=np.int64)
        for i, c in enumerate(columns):
            rows ^= typed_hashes(c, batch.column(i), fields[i], i + 1)
        row_checksum = exact_sum(rows)
    stats = {"rows": batch.num_rows, "checksum": row_checksum}
    for i, c in enumerate(columns):
        values = batch.column(i)
        stats[f"nulls_{i}"] = values.null_count
        if is_float(c):
            # NaN sorts above every number, as in Spark and PostgreSQL
            nan = pc.is_nan(values)
            stats[f"nan_{i}"] = nans = pc.sum(nan).as_py() or 0
            numbers = pc.min_max(pc.filter(values, pc.invert(nan)))
            low, high = numbers["min"].as_py(), numbers["max"].as_py()
            stats[f"min_{i}"] = math.nan if low is None and nans else low
            stats[f"max_{i}"] = math.nan if nans else high
            stats[f"hash_{i}"] = float_hash_sum(values)
        if c.kind in verify.TEXTUAL:
            stats[f"nul_{i}"] = pc.sum(pc.match_substring(fields[i], "\x00")).as_py() or 0
        if c.kind == "json":
            stats[f"dup_{i}"] = pc.sum(pc.match_substring(fields[i], nested.DUPLICATE_KEY)).as_py() or 0
        if c.kind in verify.DATED:
            stats[f"oor_{i}"] = outside_postgres(values)
    return stats


def _lines(columns: list[Column], batch: pa.RecordBatch) -> tuple[pa.Array, list[pa.Array]]:
    """(every row's CSV line with its newline, each column's CSV fields)."""
    fields = [canonical(c, batch.column(i)) for i, c in enumerate(columns)]
    line = pc.binary_join_element_wise(*[fields[i] for i in csv_order(columns)], ",")
    return pc.binary_join_element_wise(line, "\n", ""), fields


def _write(out, lines: pa.Array) -> None:
    """Write a string array's values back to back: its data buffer, between the first and last offsets."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    out.write(memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])])


def _parquet_format() -> ds.ParquetFileFormat:
    """INT96 timestamps as microseconds, as planned (see ``source._arrow_schema``); page CRCs checked where a
    file carries them (``[export] verify_page_checksums``)."""
    return ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us"),
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            page_checksum_verification=settings.export().verify_page_checksums))


def read_failure(path: str, exc: Exception) -> str:
    """One sentence on why a reader failed on a file, naming it."""
    reason = str(exc).strip().split("\n", 1)[0][:300] or type(exc).__name__
    if "CRC checksum verification failed" in reason:
        return f"file {path!r} is corrupt: a page does not match the CRC checksum the file stores for it ({reason})"
    if "Nested data conversions not implemented for chunked array outputs" in reason:  # apache/arrow#32723
        return (f"file {path!r} holds more than 2 GiB of strings or bytes of one list, struct or map column in one "
                "row group, which pyarrow cannot read as one piece (and a jsonb value holds at most 255 MB); "
                "write it with smaller row groups or smaller values")
    return f"file {path!r} cannot be read ({reason})"


@contextmanager
def _reading(plan: Plan, index: int, path: str):
    """Turn pyarrow's failure to read ``path`` into an ``ExportError`` naming it."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno:  # the machine's failure (a permission, say), not the file's
            raise
        raise ExportError(f"{read_failure(path, exc)}; {Chunk(plan.load_id, index)} of {plan.table} was not "
                          "exported and nothing was published") from exc


def _file_batches(plan: Plan, index: int, schema: pa.Schema):
    """The batches of the chunk's files in order, read as ``schema``; each file's rows checked against its
    footer's count, and a failure naming the file."""
    names = plan.column_names
    parquet = _parquet_format()
    for path, expected in zip(plan.chunk_paths(index), plan.chunk_file_rows(index), strict=True):
        rows = 0
        with _reading(plan, index, path):
            for batch in ds.dataset(path, format=parquet, schema=schema).to_batches(
                    columns=names, batch_size=BATCH_ROWS, use_threads=True):
                rows += batch.num_rows
                yield batch
        if rows != expected:
            raise ExportError(f"file {path!r} holds {rows:,} rows but its footer says {expected:,}: the file is "
                              f"inconsistent, so {plan.table} cannot be verified; nothing was published")


def _loadable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Half-precision floats widened to float32 (exactly), as the real column holds them."""
    columns = [c.cast(pa.float32()) if pa.types.is_float16(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _batches(plan: Plan, index: int):
    """The chunk's rows in batches of about BATCH_ROWS, whatever the files' sizes (at least one batch)."""
    first = plan.chunk_paths(index)[0]
    with _reading(plan, index, first):  # the chunk's files are read as its first file is (dictionary or not)
        schema = ds.dataset(first, format=_parquet_format()).schema
    pending: list[pa.RecordBatch] = []
    rows, sent = 0, False
    for batch in _file_batches(plan, index, schema):
        pending.append(batch)
        rows += batch.num_rows
        if rows >= BATCH_ROWS:
            yield _loadable(pa.Table.from_batches(pending).combine_chunks().to_batches()[0])
            pending, rows, sent = [], 0, True
    if pending or not sent:
        table = pa.Table.from_batches(pending, schema=schema.empty_table().select(plan.column_names).schema)
        yield _loadable(pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns],
                                                   names=plan.column_names))


def export_chunk(plan: Plan, index: int, folder: Path, checksum: str = CHECKSUM) -> dict:
    """Write chunk ``index`` of ``plan`` as ``folder/part-00000.csv``; return its source statistics, with the
    row hash ``checksum`` names (the Spark engine's "md5" for a chunk it hands over)."""
    stats: dict = {}
    path = folder / "part-00000.csv"
    try:
        folder.mkdir()
        with open(path, "wb", buffering=4 << 20) as out:
            for batch in _batches(plan, index):
                lines, fields = _lines(plan.columns, batch)
                _write(out, lines)
                stats = verify.combine([stats, batch_stats(plan.columns, batch, fields, checksum)])
    except (pa.ArrowException, nested.NestedValueError) as exc:
        reason = str(exc).strip().split("\n", 1)[0][:500]
        raise ExportError(f"pyarrow failed to export {Chunk(plan.load_id, index)} of {plan.table} "
                          f"(source {plan.describe_chunk(index)}): {reason}") from exc
    except OSError as exc:  # a full disk, say: name the file
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return stats


def column_checksums(plan: Plan) -> dict[int, int]:
    """Per non-float column i: the sum of ``hashtextextended`` of its CSV field over every source row
    (``verify.pg_column_checksums`` on the loaded side). Reads the whole source: used only to name
    the columns after a row checksum failed, whichever engine exported the load."""
    sums = {i: 0 for i, c in enumerate(plan.columns) if not is_float(c)}
    for index in range(len(plan.chunks)):
        for batch in _batches(plan, index):
            for i in sums:
                sums[i] += hash_sum(canonical(plan.columns[i], batch.column(i)))
    return sums
