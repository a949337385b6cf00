"""The tables ``IngestAll`` loads: every ``[[tables]]`` entry of every ``config/*.toml``.

    [[tables]]
    table = "product.product_master"   # target, schema.table (quote parts as in SQL)
    source = "data_sample"             # folder of Parquet files, relative to the working directory
    chunk_rows = 500000                # optional; default [pipeline] chunk_rows
    mode = "merge"                     # optional: replace (default), append or merge
    key = ["id", "day"]                # merge only: the columns that identify a row
    dedup = "last"                     # merge only: a key twice among the new files - the latest file's row
                                       #   (by name, then row order) wins; default: refused
    source_file_column = "source_file" # optional: a text column holding each row's file name; then a
                                       #   rewritten file's rows are replaced (append, merge modes) ...
    on_removed = "delete"              # ... and a removed file's rows deleted ("delete") or kept ("keep");
                                       #   default: either stops the run
    primary_key = ["id"]               # optional: made on every table published (its columns must be unique)
    indexes = [["day"], ["name", "id"]]  # optional: made on every table published
    settle_seconds = 30                # optional: a new file is taken once unchanged for this long
    max_bad_rows = 100                 # optional: a budget of rows PostgreSQL cannot hold, set aside in the
    max_bad_fraction = 0.001           #   quarantine table (the greater of the two); default 0: refused
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from .. import config
from ..errors import ConfigError
from ..model.load import Load
from ..model.naming import TableName
from ..model.options import MODES, LoadOptions
from .listing import fingerprint, list_files

_KEYS = {"table": str, "source": str, "chunk_rows": int, "mode": str, "key": list, "dedup": str,
         "source_file_column": str, "on_removed": str, "primary_key": list, "indexes": list,
         "settle_seconds": (int, float), "max_bad_rows": int, "max_bad_fraction": (int, float)}
_COLUMN_LISTS = ("key", "primary_key")
ON_REMOVED = ("refuse", "delete", "keep")
DEDUP = ("refuse", "last")


class TableSpec(NamedTuple):
    """A table's entry: where its rows come from, how it is loaded (``options``), and which files a run takes -
    what to do with a recorded file removed from the folder (``on_removed``: refuse, delete its rows, keep them),
    and how long a new file must be unchanged before it is taken (``settle_seconds``)."""

    table: str
    source: str
    chunk_rows: int
    options: LoadOptions = LoadOptions()
    on_removed: str = "refuse"
    settle_seconds: float = 0


def check_mode(mode: str, key: tuple[str, ...], where: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"{where}: unknown mode {mode!r}; choose {', '.join(MODES[:-1])} or {MODES[-1]}")
    if (mode == "merge") != bool(key):
        raise ConfigError(f"{where}: mode 'merge' needs a key (the columns that identify a row)" if not key else
                          f"{where}: a key is for mode 'merge' only, not {mode!r}")
    return mode


def check_spec(spec: TableSpec, where: str) -> TableSpec:
    """The settings that make sense together and with the mode."""
    options = spec.options
    if options.dedup and options.mode != "merge":
        raise ConfigError(f"{where}: dedup is for mode 'merge' only, not {options.mode!r}")
    if spec.on_removed not in ON_REMOVED:
        raise ConfigError(f"{where}: unknown on_removed {spec.on_removed!r}; choose 'delete' or 'keep' (or leave "
                          "it out to refuse)")
    if spec.on_removed == "delete" and not options.source_file_column:
        raise ConfigError(f"{where}: on_removed = 'delete' needs a source_file_column, to find a removed file's rows")
    if spec.on_removed == "delete" and options.mode == "merge":  # the rows it replaced in earlier files are gone
        raise ConfigError(f"{where}: on_removed = 'delete' is for mode 'append' only: a merge cannot bring back the "
                          "rows of earlier files that a removed file's rows replaced")
    if spec.settle_seconds < 0:
        raise ConfigError(f"{where}: 'settle_seconds' must not be negative")
    max_rows, max_fraction = options.bad_rows or (0, 0)
    if max_rows < 0:
        raise ConfigError(f"{where}: 'max_bad_rows' must not be negative")
    if not 0 <= max_fraction <= 1:
        raise ConfigError(f"{where}: 'max_bad_fraction' must be between 0 and 1")
    return spec


def _bad_rows(max_rows: int, max_fraction: float) -> tuple[int, float] | None:
    """The bad-row budget of ``LoadOptions``: None when both limits are 0 (bad rows refused)."""
    return (max_rows, max_fraction) if max_rows or max_fraction else None


def _column_list(value, where: str, key: str) -> tuple[str, ...]:
    """A list of column names, or one name."""
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c and "," not in c for c in value):
        raise ConfigError(f"{where}: {key!r} must name columns (a string or a list of strings, without commas)")
    return tuple(value)


def load_tables(config_dir: str | None = None) -> list[TableSpec]:
    folder = Path(config_dir or config.pipeline().config_dir)
    if not folder.is_dir():
        raise ConfigError(f"config folder {str(folder)!r} does not exist")
    specs: list[TableSpec] = []
    for path in sorted(folder.glob("*.toml")):
        specs.extend(_read(path))
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.table in seen:
            raise ConfigError(f"table {spec.table} is declared twice in {folder}")
        seen[spec.table] = folder
    return specs


def find(table: str) -> TableSpec:
    spec = declared(table)
    if spec is None:
        load_tables()  # a missing config folder is named as such
        raise ConfigError(f"table {TableName.parse(table)} is not declared in {config.pipeline().config_dir}/; "
                          "declare it there or pass --source")
    return spec


def _entries(path: Path) -> list[dict]:
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(doc) - {"tables"}
    if unknown:
        raise ConfigError(f"{path}: unknown section {sorted(unknown)[0]!r}; expected [[tables]] entries")
    entries = doc.get("tables", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'tables' must be an array of tables ([[tables]])")
    return entries


def _checked(entry: dict, where: str) -> dict:
    """The entry's values, each of its key's type; column lists as tuples."""
    for key, value in entry.items():
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        if key in _COLUMN_LISTS:
            value = entry[key] = _column_list(value, where, key)
        elif key == "indexes":
            if not isinstance(value, list):
                raise ConfigError(f"{where}: 'indexes' must be a list of indexes, each a column or a list of columns")
            value = entry[key] = tuple(_column_list(index, where, "indexes") for index in value)
        elif not isinstance(value, _KEYS[key]) or isinstance(value, bool):
            kind = _KEYS[key] if isinstance(_KEYS[key], type) else _KEYS[key][-1]
            raise ConfigError(f"{where}: {key!r} must be a {'number' if kind is float else kind.__name__}")
    for key in ("table", "source"):
        if key not in entry:
            raise ConfigError(f"{where}: missing {key!r}")
    if entry.get("dedup", "refuse") not in DEDUP:
        raise ConfigError(f"{where}: unknown dedup {entry['dedup']!r}; choose 'last' (or leave it out to refuse)")
    return entry


def _read(path: Path) -> list[TableSpec]:
    specs = []
    for n, entry in enumerate(_entries(path), 1):
        where = f"{path} entry {n}"
        entry = _checked(entry, where)
        chunk_rows = entry.get("chunk_rows", config.pipeline().chunk_rows)
        if chunk_rows < 1:
            raise ConfigError(f"{where}: 'chunk_rows' must be positive")
        key = entry.get("key", ())
        options = LoadOptions(check_mode(entry.get("mode", "replace"), key, where), key,
                              entry.get("source_file_column", ""), entry.get("dedup") == "last",
                              _bad_rows(entry.get("max_bad_rows", 0), entry.get("max_bad_fraction", 0)),
                              entry.get("primary_key", ()), entry.get("indexes", ()))
        specs.append(check_spec(TableSpec(str(TableName.parse(entry["table"])), entry["source"], chunk_rows, options,
                                          entry.get("on_removed", "refuse"), entry.get("settle_seconds", 0)), where))
    return specs


def declared(table: str) -> TableSpec | None:
    """The table's entry in config/, if there is one."""
    wanted = str(TableName.parse(table))
    if not Path(config.pipeline().config_dir).is_dir():
        return None
    return next((spec for spec in load_tables() if spec.table == wanted), None)


def resolve(table: str, folder: str = "", chunk_rows: int = 0, mode: str = "", key: str = "",
            budget: tuple[int | None, float | None] = (None, None)) -> TableSpec:
    """The table's load settings: those given; for the rest, its entry in config/ when no folder is given,
    else the defaults. The folder is made absolute. The table's other options are always its entry's (they
    describe the table, whichever folder fills it), but for a bad-row ``budget`` given (max_bad_rows,
    max_bad_fraction)."""
    table = str(TableName.parse(table))
    entry = declared(table) if folder else find(table)  # with a folder given, for the table's options only
    spec = None if folder else entry
    declared_options = entry.options if entry else LoadOptions()
    mode = mode or (spec.options.mode if spec else "replace")
    columns = tuple(c.strip() for c in key.split(",")) if key.strip() else ()
    if not columns and spec and mode == "merge":
        columns = spec.options.key
    check_mode(mode, columns, "--mode")
    limits = [given if given is not None else held
              for given, held in zip(budget, declared_options.bad_rows or (0, 0), strict=True)]
    # dedup is declared for the table's merges; a run in another mode does without it
    options = replace(declared_options, mode=mode, key=columns, dedup=declared_options.dedup and mode == "merge",
                      bad_rows=_bad_rows(*limits))
    found = TableSpec(table, os.path.abspath(folder or spec.source),
                      chunk_rows or (spec.chunk_rows if spec else 0) or config.pipeline().chunk_rows, options,
                      entry.on_removed if entry else "refuse", entry.settle_seconds if entry else 0)
    return check_spec(found, f"{table} with --mode {mode}")


def current_load(table: str, folder: str = "", chunk_rows: int = 0) -> Load:
    """The replace load that would bring ``table`` up to date with its source folder as it is now.

    Without a folder, the table's entry in config/ gives it (and its chunk size)."""
    spec = resolve(table, folder, chunk_rows, "replace")
    return Load(spec.table, spec.source, spec.chunk_rows, fingerprint(list_files(spec.source)))
