"""The tables ``IngestAll`` loads: every ``[[tables]]`` entry of every ``config/*.toml``.

    [[tables]]
    table = "product.product_master"   # target, schema.table (quote parts as in SQL)
    source = "data_sample"             # folder of Parquet files, relative to the working directory
    chunk_rows = 500000                # optional; default [pipeline] chunk_rows
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import NamedTuple

from .. import config
from ..errors import ConfigError
from ..model.load import Load
from ..model.naming import TableName
from .listing import fingerprint, list_files

_KEYS = {"table": str, "source": str, "chunk_rows": int}


class TableSpec(NamedTuple):
    table: str
    source: str
    chunk_rows: int


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
            if not isinstance(value, _KEYS[key]) or isinstance(value, bool):
                raise ConfigError(f"{where}: {key!r} must be a {_KEYS[key].__name__}")
        for key in ("table", "source"):
            if key not in entry:
                raise ConfigError(f"{where}: missing {key!r}")
        chunk_rows = entry.get("chunk_rows", config.pipeline().chunk_rows)
        if chunk_rows < 1:
            raise ConfigError(f"{where}: 'chunk_rows' must be positive")
        specs.append(TableSpec(str(TableName.parse(entry["table"])), entry["source"], chunk_rows))
    return specs


def current_load(table: str, folder: str = "", chunk_rows: int = 0) -> Load:
    """The load that would bring ``table`` up to date with its source folder as it is now.

    Without a folder, the table's entry in config/ gives it (and its chunk size)."""
    table = str(TableName.parse(table))
    if not folder:
        spec = find(table)
        folder, chunk_rows = spec.source, chunk_rows or spec.chunk_rows
    folder = os.path.abspath(folder)
    files = list_files(folder)
    return Load(table, folder, chunk_rows or config.pipeline().chunk_rows, fingerprint(files))
