"""Planning a load: read every footer, check the schemas agree and map them, pack files into chunks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from .. import config
from ..errors import SourceError
from ..model.load import Load
from ..model.options import HIDDEN_FILE, HIDDEN_ROW
from ..model.plan import Plan
from ..types.mapping import pg_column
from .footers import read_footer
from .increment import Increment, stat_files
from .listing import fingerprint, list_files


def _describe(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)) for f in schema]


def make_plan(load: Load, increment: Increment | None = None) -> Plan:
    """Read every footer, check the schemas agree and map them, and pack files into chunks. The files are the
    folder's, or the ``increment``'s, as long as they are still those the load's fingerprint names. The columns the
    options add (``LoadOptions.file_column``, ``row_column``) come after the files' with each row's file name and
    index."""
    source, options = load.source, load.options
    files = list_files(source) if increment is None else stat_files(source, increment.files)
    if fingerprint(files) != load.fingerprint:
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
    _check_columns(load, columns)
    for name, arrow_type, what in ((options.file_column, pa.string(), "file name"),
                                   (options.row_column, pa.int64(), "row index")):
        if not name:
            continue
        if name in {c.name for c in columns} and name in (HIDDEN_FILE, HIDDEN_ROW):
            raise SourceError(f"the files in {source!r} have a column {name!r}, which dedup = 'last' and a bad-row "
                              f"budget add themselves to hold each row's {what}; rename it in the files")
        if name in {c.name for c in columns}:
            raise SourceError(f"the files in {source!r} have a column {name!r} already, the name given to the column "
                              f"holding each row's {what} (source_file_column in config/); choose another")
        columns.append(pg_column(name, arrow_type, truncate_ns))
    files = [replace(f, digest=footer.digest) for f, footer in zip(files, footers, strict=True)]
    file_rows = [footer.rows for footer in footers]
    return Plan(load.load_id, load.table, source, files, file_rows, columns, pack(file_rows, load.chunk_rows),
                footers[0].repeated_leaves, [footer.leaf_entries for footer in footers], options,
                increment.whole_table if increment else True, increment.rewritten if increment else {})


def _check_columns(load: Load, columns: list) -> None:
    """The columns the options name - a merge's key, the declared primary key and indexes - are the files'."""
    by_name = {c.name: c for c in columns}
    options, source = load.options, load.source
    for name in options.key:
        if name not in by_name:
            raise SourceError(f"key column {name!r} is not a column of the files in {source!r} (they have "
                              f"{', '.join(by_name)})")
        if by_name[name].is_float:
            raise SourceError(f"key column {name!r} is a float column ({by_name[name].pg_type}); floats do not make "
                              "a merge key - choose columns whose values compare exactly")
    declared = [("the primary key", options.primary_key)] if options.primary_key else []
    declared += [("an index on", index) for index in options.indexes]
    for what, names in declared:
        missing = [name for name in names if name not in by_name and name != options.source_file_column]
        if missing:
            raise SourceError(f"config/ declares {what} ({', '.join(names)}) for {load.table}, but the files in "
                              f"{source!r} have no column {missing[0]!r}; nothing was loaded")


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
