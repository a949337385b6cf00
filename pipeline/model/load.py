"""Where a load lives: its id, its folder in the state directory and its staging table. Nothing else
builds these names.

    <state_dir>/<table slug>/<load id>/files.json             (an increment's files: append mode)
                                      /plan.json
                                      /chunks.tmp-<random>/       (an export in progress, and its
                                      /.chunks.tmp-<random>.lock   lock, held while it runs)
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
from .options import LoadOptions

MAPPING_VERSION = "2"  # bump when the CSV form of a type changes: old chunk sets must not be reused
MANIFEST = "_manifest.json"
INCREMENT = "files.json"
_EXPORTING = "chunks.tmp-"


def staging_name(load_id: str) -> str:
    """The staging table's name (in the state schema) of load ``load_id``."""
    return f"load_{load_id}"


class Load(NamedTuple):
    """One load: the whole source folder (``replace``), or the files not yet in the table - an increment, its
    files listed in ``increment_file`` - added to it or merged into it (``options.mode``). ``fingerprint`` is the
    digest of its files."""

    table: str
    source: str
    chunk_rows: int
    fingerprint: str
    options: LoadOptions = LoadOptions()

    @property
    def load_id(self) -> str:
        """The digest of what is loaded: a load with other files, chunks or options is another load."""
        parts = [MAPPING_VERSION, self.table, self.source, str(self.chunk_rows), self.fingerprint]
        return hashlib.sha256("\0".join(parts + self.options.id_parts()).encode()).hexdigest()[:16]

    @property
    def incremental(self) -> bool:
        return self.options.incremental

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
    def increment_file(self) -> Path:
        return self.folder / INCREMENT

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

    @staticmethod
    def export_lock(export_folder: Path) -> Path:
        """The file whose lock the exporting process holds (``folders.exporting``)."""
        return export_folder.with_name(f".{export_folder.name}.lock")

    @property
    def copied_folder(self) -> Path:
        return self.folder / "copied"

    def copied_file(self, chunk_dirname: str) -> Path:
        return self.copied_folder / f"{chunk_dirname}.json"

    @property
    def verified_file(self) -> Path:
        return self.folder / "verified.json"

    def remove_marks(self) -> None:
        """Remove the marks of copied chunks and of the verification (a load run again from its plan)."""
        shutil.rmtree(self.copied_folder, ignore_errors=True)
        self.verified_file.unlink(missing_ok=True)
