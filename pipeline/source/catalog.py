"""The tables ``IngestAll`` loads: every ``[[tables]]`` entry of every ``config/*.toml``.

    [[tables]]
    table = "product.product_master"   # target, schema.table (quote parts as in SQL)
    source = "data_sample"             # folder of Parquet files, relative to the working directory
    chunk_rows = 500000                # optional; default [pipeline] chunk_rows
    mode = "merge"                     # optional: replace (default), append or merge
    key = ["id", "day"]                # merge only: the columns that identify a row
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

_KEYS = {"table": str, "source": str, "chunk_rows": int, "mode": str, "key": list}


class TableSpec(NamedTuple):
    table: str
    source: str
    chunk_rows: int
    mode: str = "replace"
    key: str = ""  # merge: the key's column names, comma-separated


def check_mode(mode: str, key: str, where: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"{where}: unknown mode {mode!r}; choose {', '.join(MODES[:-1])} or {MODES[-1]}")
    if (mode == "merge") != bool(key):
        raise ConfigError(f"{where}: mode 'merge' needs a key (the columns that identify a row)" if key == "" else
                          f"{where}: a key is for mode 'merge' only, not {mode!r}")
    return mode


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
    wanted = str(TableName.parse(table))
    for spec in load_tables():
        if spec.table == wanted:
            return spec
    raise ConfigError(f"table {wanted} is not declared in {config.pipeline().config_dir}/; "
                      "declare it there or pass --source")


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
            if key == "key" and isinstance(value, str):
                value = entry[key] = [value]
            if not isinstance(value, _KEYS[key]) or isinstance(value, bool):
                raise ConfigError(f"{where}: {key!r} must be a {_KEYS[key].__name__}")
            if key == "key" and not all(isinstance(c, str) and c and "," not in c for c in value) or value == []:
                raise ConfigError(f"{where}: 'key' must name columns (a string or a list of strings, without commas)")
        for key in ("table", "source"):
            if key not in entry:
                raise ConfigError(f"{where}: missing {key!r}")
        chunk_rows = entry.get("chunk_rows", config.pipeline().chunk_rows)
        if chunk_rows < 1:
            raise ConfigError(f"{where}: 'chunk_rows' must be positive")
        key = ",".join(entry.get("key", []))
        mode = check_mode(entry.get("mode", "replace"), key, where)
        specs.append(TableSpec(str(TableName.parse(entry["table"])), entry["source"], chunk_rows, mode, key))
    return specs


def resolve(table: str, folder: str = "", chunk_rows: int = 0, mode: str = "", key: str = "") -> TableSpec:
    """The table's load settings: those given; for the rest, its entry in config/ when no folder is given,
    else the defaults. The folder is made absolute."""
    table = str(TableName.parse(table))
    spec = find(table) if not folder else None
    folder = folder or spec.source
    chunk_rows = chunk_rows or (spec.chunk_rows if spec else 0) or config.pipeline().chunk_rows
    mode = mode or (spec.mode if spec else "replace")
    if not key and spec and mode == "merge":
        key = spec.key
    key = ",".join(c.strip() for c in key.split(",")) if key else ""
    mode = check_mode(mode, key, "--mode")
    return TableSpec(table, os.path.abspath(folder), chunk_rows, mode, key)


def current_load(table: str, folder: str = "", chunk_rows: int = 0) -> Load:
    """The replace load that would bring ``table`` up to date with its source folder as it is now.

    Without a folder, the table's entry in config/ gives it (and its chunk size)."""
    spec = resolve(table, folder, chunk_rows, "replace")
    return Load(spec.table, spec.source, spec.chunk_rows, fingerprint(list_files(spec.source)))
