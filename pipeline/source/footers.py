"""The Parquet side of planning: which files a source folder holds, their identity and schema.

A load is identified by its source's *identity*: every file's name, size and modification
time. Reading that costs one ``stat`` per file, so a rerun can tell "nothing changed"
without starting Spark. The plan itself reads every file's Parquet footer (row count and
schema) - a footer is a few KB, so this is fast even for tens of thousands of files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from . import settings
from .errors import SourceError
from .typemap import Column, pg_column

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    name: str
    size: int
    mtime_ns: int


def list_files(folder: str | os.PathLike) -> list[SourceFile]:
    """Every data file in ``folder``, sorted by name; names starting with '.' or '_' are skipped
    (Hadoop/Spark markers such as _SUCCESS and .crc files)."""
    root = Path(folder)
    if not root.exists():
        raise SourceError(f"source folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise SourceError(f"source {str(root)!r} is not a folder")
    files = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir():
                raise SourceError(f"source folder {str(root)!r} contains a sub-folder {entry.name!r}; "
                                  "only a flat folder of Parquet files can be loaded")
            st = entry.stat()
            files.append(SourceFile(entry.name, st.st_size, st.st_mtime_ns))
    if not files:
        raise SourceError(f"source folder {str(root)!r} holds no Parquet files")
    return sorted(files, key=lambda f: f.name)


def fingerprint(files: list[SourceFile]) -> str:
    """A digest of the source's identity: names, sizes and modification times."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}\0{f.size}\0{f.mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


SIGNATURE = 28  # the nonce and tag after a signed plaintext footer (Parquet modular encryption)


class Footer(NamedTuple):
    """What planning needs of one file's footer."""

    rows: int
    schema: pa.Schema
    repeated_leaves: list[int]  # Parquet's leaf columns inside a list or map, numbered depth first
    leaf_entries: list[int]  # the level entries the row groups count for each of them


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


def _footer(path: Path) -> Footer:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8))
            tail = f.read(8)  # the footer's length and the magic bytes
        if tail[4:] == b"PARE":
            raise SourceError(f"file {str(path)!r} is encrypted (Parquet modular encryption, encrypted footer); "
                              "the pipeline reads only unencrypted Parquet - decrypt it first")
        meta = pq.read_metadata(path)
        if int.from_bytes(tail[:4], "little") - meta.serialized_size == SIGNATURE:
            raise SourceError(f"file {str(path)!r} has encrypted columns (Parquet modular encryption, signed "
                              "plaintext footer); the pipeline reads only unencrypted Parquet - decrypt it first")
        rows, leaves, entries = _counts(path, meta)
        return Footer(rows, _arrow_schema(meta.schema), leaves, entries)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).split("\n", 1)[0]
        raise SourceError(f"file {str(path)!r} is not a readable Parquet file ({reason})") from exc


def _arrow_schema(parquet: pq.ParquetSchema) -> pa.Schema:
    """The file's Arrow schema, with INT96 timestamps (Spark's, Impala's, Hive's) read as microseconds,
    as Spark reads them, rather than nanoseconds - their whole range fits, and so do their digits."""
    schema = parquet.to_arrow_schema()
    int96 = {parquet.column(i).path for i in range(len(parquet)) if parquet.column(i).physical_type == "INT96"}
    return pa.schema([f.with_type(pa.timestamp("us", f.type.tz)) if f.name in int96 else f for f in schema],
                     metadata=schema.metadata)


def _describe(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)) for f in schema]


@dataclass(frozen=True)
class Plan:
    """What one load will do: the source files, their rows, the columns and the chunks."""

    load_id: str
    table: str
    source: str
    files: list[SourceFile]
    file_rows: list[int]
    columns: list[Column]
    chunks: list[list[int]]  # per chunk: indices into ``files``
    # The leaves (Parquet's leaf columns, numbered depth first) inside a list or map, and per file the level
    # entries its footer counts for each: a reader that misreads repetition levels reads other counts.
    repeated_leaves: list[int] = field(default_factory=list)
    file_leaf_entries: list[list[int]] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.file_rows)

    def chunk_rows(self, index: int) -> int:
        return sum(self.file_rows[i] for i in self.chunks[index])

    def describe_chunk(self, index: int) -> str:
        names = [self.files[i].name for i in self.chunks[index]]
        return repr(names[0]) if len(names) == 1 else f"{names[0]!r} .. {names[-1]!r} ({len(names)} files)"

    def chunk_leaf_entries(self, index: int) -> list[int]:
        """Per repeated leaf: the level entries the footers of the chunk's files count."""
        return [sum(self.file_leaf_entries[i][k] for i in self.chunks[index]) for k in range(len(self.repeated_leaves))]

    def chunk_file_rows(self, index: int) -> list[int]:
        return [self.file_rows[i] for i in self.chunks[index]]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def chunk_paths(self, index: int) -> list[str]:
        return [os.path.join(self.source, self.files[i].name) for i in self.chunks[index]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["files"] = [SourceFile(**f) for f in raw["files"]]
        raw["columns"] = [Column(*c) for c in raw["columns"]]
        return cls(**raw)


def make_plan(load_id: str, table: str, source: str, expected_fingerprint: str, chunk_rows: int) -> Plan:
    """Read every footer, check the schemas agree and map them, and pack files into chunks."""
    files = list_files(source)
    if fingerprint(files) != expected_fingerprint:
        raise SourceError(f"source folder {source!r} changed after this load was scheduled; run it again")
    root = Path(source)
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        footers = list(pool.map(_footer, [root / f.name for f in files]))
    first_schema = _describe(footers[0].schema)
    for f, footer in zip(files, footers, strict=True):
        described = _describe(footer.schema)
        if described != first_schema:
            raise SourceError(_schema_difference(files[0].name, first_schema, f.name, described, source))
    truncate_ns = settings.export().truncate_nanoseconds
    try:
        columns = [pg_column(arrow_field.name, arrow_field.type, truncate_ns) for arrow_field in footers[0].schema]
    except SourceError as exc:  # the schemas agree: the first file stands for them all
        raise type(exc)(f"file {str(root / files[0].name)!r}: {exc}") from exc
    if not columns:
        raise SourceError(f"Parquet files in {source!r} have no columns")
    file_rows = [footer.rows for footer in footers]
    return Plan(load_id, table, source, files, file_rows, columns, pack(file_rows, chunk_rows),
                footers[0].repeated_leaves, [footer.leaf_entries for footer in footers])


def pack(file_rows: list[int], chunk_rows: int) -> list[list[int]]:
    """Group consecutive files into chunks of at most ``chunk_rows`` rows; a file larger than that
    is a chunk of its own."""
    chunks: list[list[int]] = [[]]
    rows = 0
    for i, n in enumerate(file_rows):
        if chunks[-1] and rows + n > chunk_rows:
            chunks.append([])
            rows = 0
        chunks[-1].append(i)
        rows += n
    return chunks


def _schema_difference(a: str, sa: list, b: str, sb: list, source: str) -> str:
    def show(cols: list) -> str:
        return ", ".join(f"{n} {t}" for n, t in cols) or "no columns"

    for ca, cb in zip(sa, sb, strict=False):
        if ca != cb:
            return (f"Parquet files in {source!r} have different schemas: {b!r} has column "
                    f"{cb[0]!r} {cb[1]} where {a!r} has {ca[0]!r} {ca[1]}")
    return (f"Parquet files in {source!r} have different schemas: {a!r} has ({show(sa)}) "
            f"but {b!r} has ({show(sb)})")
