"""Where a load lives: its id, its folder in the state directory and its staging table. Nothing else
builds these names.

    <state_dir>/<table slug>/<load id>/plan.json
                                      /chunks.tmp-<random>/       (an export in progress)
                                      /chunks/_manifest.json, chunks/chunk-NNNNN/part-*
                                      /copied/chunk-NNNNN.json
                                      /verified.json
    <state schema>.load_<load id>     the staging table
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import NamedTuple

from .. import config
from .naming import TableName

MAPPING_VERSION = "2"  # bump when the CSV form of a type changes: old chunk sets must not be reused
MANIFEST = "_manifest.json"
_EXPORTING = "chunks.tmp-"


def staging_name(load_id: str) -> str:
    """The staging table's name (in the state schema) of load ``load_id``."""
    return f"load_{load_id}"


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
    def target(self) -> TableName:
        return TableName.parse(self.table)

    @property
    def table_dir(self) -> Path:
        return config.state_dir() / self.target.slug()

    @property
    def folder(self) -> Path:
        return self.table_dir / self.load_id

    @property
    def plan_file(self) -> Path:
        return self.folder / "plan.json"

    @property
    def chunk_set(self) -> Path:
        return self.folder / "chunks"

    @property
    def manifest_file(self) -> Path:
        return self.chunk_set / MANIFEST

    def new_export_folder(self) -> Path:
        """A fresh folder for an export in progress, renamed to ``chunk_set`` when complete."""
        return self.folder / f"{_EXPORTING}{uuid.uuid4().hex[:8]}"

    def export_folders(self) -> list[Path]:
        """The folders of exports in progress (or left by a killed one)."""
        return sorted(self.folder.glob(f"{_EXPORTING}*"))

    @property
    def copied_folder(self) -> Path:
        return self.folder / "copied"

    def copied_file(self, chunk_dirname: str) -> Path:
        return self.copied_folder / f"{chunk_dirname}.json"

    @property
    def verified_file(self) -> Path:
        return self.folder / "verified.json"

    def forget_progress(self) -> None:
        """Remove the marks of copied chunks and of the verification (a load run again from its plan)."""
        shutil.rmtree(self.copied_folder, ignore_errors=True)
        self.verified_file.unlink(missing_ok=True)
