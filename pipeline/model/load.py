"""Where a load lives: its id and its folder in the state directory. Nothing else builds these names.

    <state_dir>/<table slug>/<load id>/plan.json
                                      /chunks/_manifest.json, chunks/chunk-NNNNN/part-*
                                      /copied/chunk-NNNNN.json
                                      /verified.json
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

from . import settings
from .naming import TableName

MAPPING_VERSION = "2"  # bump when the CSV form of a type changes: old chunk sets must not be reused


class Load(NamedTuple):
    table: str
    source: str
    chunk_rows: int
    fingerprint: str

    @property
    def load_id(self) -> str:
        key = "\0".join([MAPPING_VERSION, self.table, self.source, str(self.chunk_rows), self.fingerprint])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def table_dir(self) -> Path:
        return settings.state_dir() / TableName.parse(self.table).slug()

    @property
    def folder(self) -> Path:
        return self.table_dir / self.load_id

    @property
    def plan_file(self) -> Path:
        return self.folder / "plan.json"

    @property
    def chunk_set(self) -> Path:
        return self.folder / "chunks"

    def copied_file(self, chunk_dirname: str) -> Path:
        return self.folder / "copied" / f"{chunk_dirname}.json"

    @property
    def verified_file(self) -> Path:
        return self.folder / "verified.json"
