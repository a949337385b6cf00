"""Planning a load: read every footer, check the schemas agree and map them, pack files into chunks."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from .. import config
from ..errors import SourceError
from ..model.load import HIDDEN_FILE, HIDDEN_ROW
from ..model.plan import Plan, SourceFile
from ..types.mapping import pg_column
from .footers import read_footer
from .increment import stat_files
from .listing import fingerprint, list_files


def _describe(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)) for f in schema]


def make_plan(load_id: str, table: str, source: str, expected_fingerprint: str, chunk_rows: int,
              files: list[SourceFile] | None = None, *, mode: str = "replace", whole_table: bool = True,
              key: list[str] | None = None, file_column: str = "", row_column: str = "",
              rewritten: dict[str, list] | None = None, bad_rows: tuple[int, float] | None = None,
              dedup: bool = False) -> Plan:
    """Read every footer, check the schemas agree and map them, and pack files into chunks. The files are the
    folder's, or the given ones (an increment's), as long as they are still those the fingerprint names.
    ``file_column``, ``row_column``: columns added after the files' with each row's file name and index.
    ``bad_rows``: the bad-row budget, (max_bad_rows, max_bad_fraction): the load may quarantine the greater."""
    files = list_files(source) if files is None else stat_files(source, files)
    if fingerprint(files) != expected_fingerprint:
        raise SourceError(f"source folder {source!r} changed after this load was scheduled; run it again")
    root = Path(source)
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        footers = list(pool.map(read_footer, [root / f.name for f in files]))
    first_schema = _describe(footers[0].schema)
    for f, footer in zip(files, footers, strict=True):
        described = _describe(footer.schema)
        if described != first_schema:
            raise SourceError(_schema_difference(files[0].name, first_schema, f.name, described, source))
    truncate_ns = config.export().truncate_nanoseconds
    try:
        columns = [pg_column(arrow_field.name, arrow_field.type, truncate_ns) for arrow_field in footers[0].schema]
    except SourceError as exc:  # the schemas agree: the first file stands for them all
        raise type(exc)(f"file {str(root / files[0].name)!r}: {exc}") from exc
    if not columns:
        raise SourceError(f"Parquet files in {source!r} have no columns")
    for name, arrow_type, what in ((file_column, pa.string(), "file name"), (row_column, pa.int64(), "row index")):
        if not name:
            continue
        if name in {c.name for c in columns} and name in (HIDDEN_FILE, HIDDEN_ROW):
            raise SourceError(f"the files in {source!r} have a column {name!r}, which dedup = 'last' and a bad-row "
                              f"budget add themselves to hold each row's {what}; rename it in the files")
        if name in {c.name for c in columns}:
            raise SourceError(f"the files in {source!r} have a column {name!r} already, the name given to the column "
                              f"holding each row's {what} (source_file_column in config/); choose another")
        columns.append(pg_column(name, arrow_type, truncate_ns))
    _check_key(key or [], columns, source)
    files = [replace(f, digest=footer.digest) for f, footer in zip(files, footers, strict=True)]
    file_rows = [footer.rows for footer in footers]
    budget = None if bad_rows is None else max(bad_rows[0], math.floor(bad_rows[1] * sum(file_rows)))
    return Plan(load_id, table, source, files, file_rows, columns, pack(file_rows, chunk_rows),
                footers[0].repeated_leaves, [footer.leaf_entries for footer in footers], mode, whole_table, key or [],
                file_column, row_column, rewritten or {}, budget, dedup)


def _check_key(key: list[str], columns: list, source: str) -> None:
    by_name = {c.name: c for c in columns}
    for name in key:
        if name not in by_name:
            raise SourceError(f"key column {name!r} is not a column of the files in {source!r} (they have "
                              f"{', '.join(by_name)})")
        if by_name[name].is_float:
            raise SourceError(f"key column {name!r} is a float column ({by_name[name].pg_type}); floats do not make "
                              "a merge key - choose columns whose values compare exactly")


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
