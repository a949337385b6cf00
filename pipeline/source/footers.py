"""What planning reads of a Parquet file: its footer (row count, schema, level entries), refusing a
footer that contradicts itself or a file it cannot read. A footer is a few KB, so this is fast even
for tens of thousands of files."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SourceError, first_line

log = logging.getLogger(__name__)

SIGNATURE = 28  # the nonce and tag after a signed plaintext footer (Parquet modular encryption)


class Footer(NamedTuple):
    """What planning needs of one file's footer."""

    rows: int
    schema: pa.Schema
    repeated_leaves: list[int]  # Parquet's leaf columns inside a list or map, numbered depth first
    leaf_entries: list[int]  # the level entries the row groups count for each of them
    digest: str  # of the footer's bytes: what the record of published files compares (``footer_digest``)


MAGIC = b"PAR1"


def _tail(f) -> tuple[bytes, str]:
    """(the file's last 8 bytes - the footer's length and the magic -, a digest of its footer)."""
    size = os.fstat(f.fileno()).st_size
    f.seek(max(0, size - 8))
    tail = f.read(8)
    length = int.from_bytes(tail[:4], "little") if len(tail) == 8 else 0
    f.seek(max(0, size - 8 - length))
    return tail, hashlib.sha256(f.read(length + 8)).hexdigest()[:32]


def footer_digest(path: Path) -> str | None:
    """A digest of the file's footer (its schema, row groups, offsets and statistics): a rewritten file has
    another one, a file copied or touched the same one. None while the file is incomplete: Parquet writers
    write the footer and its closing magic bytes last, so a file still being written has neither."""
    with open(path, "rb") as f:
        tail, digest = _tail(f)
    return digest if tail[4:] == MAGIC else None


def _counts(path: Path, meta: pq.FileMetaData) -> tuple[int, list[int], list[int]]:
    """(the file's rows, from its row groups; its repeated leaves; their level entries); refuses a
    footer whose counts contradict each other.

    The row groups' counts are the ones readers go by: a writer that left the file's own count out
    (parquet-rs 0.3 wrote 0) is loaded by them, with a warning."""
    rows = 0
    leaves = [c for c in range(len(meta.schema)) if meta.schema.column(c).max_repetition_level > 0]
    entries = [0] * len(leaves)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = meta.schema.column(c)
            values = group.column(c).num_values
            if column.max_repetition_level == 0:  # one value (or NULL) a row
                consistent = values == group.num_rows
            else:  # at least one entry a row, even for an empty or NULL list
                consistent = values >= group.num_rows and (values == 0) == (group.num_rows == 0)
            if not consistent:
                raise SourceError(
                    f"file {str(path)!r} is inconsistent: row group {g} counts {group.num_rows:,} rows but its column "
                    f"{column.path!r} {values:,} values; the file is corrupt")
        rows += group.num_rows
        for k, c in enumerate(leaves):
            entries[k] += group.column(c).num_values
    if rows != meta.num_rows:
        log.warning("file %r says it holds %s rows but its row groups hold %s; loading the row groups' %s",
                    str(path), f"{meta.num_rows:,}", f"{rows:,}", f"{rows:,}")
    return rows, leaves, entries


def read_footer(path: Path) -> Footer:
    try:
        with open(path, "rb") as f:
            tail, digest = _tail(f)
        if tail[4:] == b"PARE":
            raise SourceError(f"file {str(path)!r} is encrypted (Parquet modular encryption, encrypted footer); "
                              "the pipeline reads only unencrypted Parquet - decrypt it first")
        meta = pq.read_metadata(path)
        if int.from_bytes(tail[:4], "little") - meta.serialized_size == SIGNATURE:
            raise SourceError(f"file {str(path)!r} has encrypted columns (Parquet modular encryption, signed "
                              "plaintext footer); the pipeline reads only unencrypted Parquet - decrypt it first")
        rows, leaves, entries = _counts(path, meta)
        return Footer(rows, _arrow_schema(meta.schema), leaves, entries, digest)
    except (pa.ArrowException, OSError) as exc:
        reason = first_line(exc, None)
        raise SourceError(f"file {str(path)!r} is not a readable Parquet file ({reason})") from exc


def _arrow_schema(parquet: pq.ParquetSchema) -> pa.Schema:
    """The file's Arrow schema, with INT96 timestamps (Spark's, Impala's, Hive's) read as microseconds,
    as Spark reads them, rather than nanoseconds - their whole range fits, and so do their digits."""
    schema = parquet.to_arrow_schema()
    int96 = {parquet.column(i).path for i in range(len(parquet)) if parquet.column(i).physical_type == "INT96"}
    return pa.schema([f.with_type(pa.timestamp("us", f.type.tz)) if f.name in int96 else f for f in schema],
                     metadata=schema.metadata)
