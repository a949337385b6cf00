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
from pathlib import Path
from typing import NamedTuple

from .. import config
from ..errors import ConfigError
from ..model.load import MODES, Load
from ..model.naming import TableName
from .listing import fingerprint, list_files

_KEYS = {"table": str, "source": str, "chunk_rows": int, "mode": str, "key": list, "dedup": str,
         "source_file_column": str, "on_removed": str, "primary_key": list, "indexes": list,
         "settle_seconds": (int, float), "max_bad_rows": int, "max_bad_fraction": (int, float)}
_COLUMN_LISTS = ("key", "primary_key")
ON_REMOVED = ("refuse", "delete", "keep")
DEDUP = ("refuse", "last")


class TableOptions(NamedTuple):
    """What ``config/`` may say about a table besides where it comes from and how it is written."""

    dedup: str = "refuse"  # merge: "last" - of rows sharing a key, the latest file's (then the last row) wins
    source_file_column: str = ""  # a column holding each row's source file name
    on_removed: str = "refuse"  # a recorded file removed from the folder: refuse, delete its rows, keep them
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    settle_seconds: float = 0  # a new file modified more recently than this waits for the next run
    max_bad_rows: int = 0  # the bad-row budget (``badrows``): the greater of these two, in rows
    max_bad_fraction: float = 0  # ... and as a fraction of the load's rows


class TableSpec(NamedTuple):
    table: str
    source: str
    chunk_rows: int
    mode: str = "replace"
    key: str = ""  # merge: the key's column names, comma-separated
    options: TableOptions = TableOptions()


def check_mode(mode: str, key: str, where: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"{where}: unknown mode {mode!r}; choose {', '.join(MODES[:-1])} or {MODES[-1]}")
    if (mode == "merge") != bool(key):
        raise ConfigError(f"{where}: mode 'merge' needs a key (the columns that identify a row)" if key == "" else
                          f"{where}: a key is for mode 'merge' only, not {mode!r}")
    return mode


def check_options(options: TableOptions, mode: str, where: str) -> TableOptions:
    """The options that make sense together and with ``mode``."""
    if options.dedup not in DEDUP:
        raise ConfigError(f"{where}: unknown dedup {options.dedup!r}; choose 'last' (or leave it out to refuse)")
    if options.dedup == "last" and mode != "merge":
        raise ConfigError(f"{where}: dedup is for mode 'merge' only, not {mode!r}")
    if options.on_removed not in ON_REMOVED:
        raise ConfigError(f"{where}: unknown on_removed {options.on_removed!r}; choose 'delete' or 'keep' (or leave "
                          "it out to refuse)")
    if options.on_removed == "delete" and not options.source_file_column:
        raise ConfigError(f"{where}: on_removed = 'delete' needs a source_file_column, to find a removed file's rows")
    if options.on_removed == "delete" and mode == "merge":  # the rows it replaced in earlier files are gone
        raise ConfigError(f"{where}: on_removed = 'delete' is for mode 'append' only: a merge cannot bring back the "
                          "rows of earlier files that a removed file's rows replaced")
    if options.settle_seconds < 0:
        raise ConfigError(f"{where}: 'settle_seconds' must not be negative")
    if options.max_bad_rows < 0:
        raise ConfigError(f"{where}: 'max_bad_rows' must not be negative")
    if not 0 <= options.max_bad_fraction <= 1:
        raise ConfigError(f"{where}: 'max_bad_fraction' must be between 0 and 1")
    return options


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


def _read(path: Path) -> list[TableSpec]:
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
    specs = []
    for n, entry in enumerate(entries, 1):
        where = f"{path} entry {n}"
        for key, value in entry.items():
            if key not in _KEYS:
                raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
            if key in _COLUMN_LISTS:
                value = entry[key] = _column_list(value, where, key)
            elif key == "indexes":
                if not isinstance(value, list):
                    raise ConfigError(f"{where}: 'indexes' must be a list of indexes, each a column or a list of "
                                      "columns")
                value = entry[key] = tuple(_column_list(index, where, "indexes") for index in value)
            elif not isinstance(value, _KEYS[key]) or isinstance(value, bool):
                kind = _KEYS[key] if isinstance(_KEYS[key], type) else _KEYS[key][-1]
                raise ConfigError(f"{where}: {key!r} must be a {'number' if kind is float else kind.__name__}")
        for key in ("table", "source"):
            if key not in entry:
                raise ConfigError(f"{where}: missing {key!r}")
        chunk_rows = entry.get("chunk_rows", config.pipeline().chunk_rows)
        if chunk_rows < 1:
            raise ConfigError(f"{where}: 'chunk_rows' must be positive")
        key = ",".join(entry.get("key", []))
        mode = check_mode(entry.get("mode", "replace"), key, where)
        options = check_options(TableOptions(**{k: v for k, v in entry.items() if k in TableOptions._fields}),
                                mode, where)
        specs.append(TableSpec(str(TableName.parse(entry["table"])), entry["source"], chunk_rows, mode, key, options))
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
    else the defaults. The folder is made absolute. The table's options are always its entry's (they describe
    the table, whichever folder fills it), but for a bad-row ``budget`` given (max_bad_rows, max_bad_fraction)."""
    table = str(TableName.parse(table))
    entry = declared(table) if folder else find(table)  # with a folder given, for the table's options only
    spec = None if folder else entry
    folder = folder or spec.source
    chunk_rows = chunk_rows or (spec.chunk_rows if spec else 0) or config.pipeline().chunk_rows
    mode = mode or (spec.mode if spec else "replace")
    if not key and spec and mode == "merge":
        key = spec.key
    key = ",".join(c.strip() for c in key.split(",")) if key else ""
    mode = check_mode(mode, key, "--mode")
    options = entry.options if entry else TableOptions()
    given = {name: value for name, value in zip(("max_bad_rows", "max_bad_fraction"), budget, strict=True)
             if value is not None}
    options = options._replace(**given)
    if options.dedup == "last" and mode != "merge":  # declared for the table's merges; this run is not one
        options = options._replace(dedup="refuse")
    check_options(options, mode, f"{table} with --mode {mode}")
    return TableSpec(table, os.path.abspath(folder), chunk_rows, mode, key, options)


def current_load(table: str, folder: str = "", chunk_rows: int = 0) -> Load:
    """The replace load that would bring ``table`` up to date with its source folder as it is now.

    Without a folder, the table's entry in config/ gives it (and its chunk size)."""
    spec = resolve(table, folder, chunk_rows, "replace")
    return Load(spec.table, spec.source, spec.chunk_rows, fingerprint(list_files(spec.source)))
