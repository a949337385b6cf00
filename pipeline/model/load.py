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
import json
import shutil
import uuid
from pathlib import Path
from typing import NamedTuple

from .. import config
from .naming import TableName

MODES = ("replace", "append", "merge")
MAPPING_VERSION = "2"  # bump when the CSV form of a type changes: old chunk sets must not be reused
MANIFEST = "_manifest.json"
INCREMENT = "files.json"
_EXPORTING = "chunks.tmp-"
# Columns a load adds to the staging table and not to the table: each row's file name and its index in the file,
# which a merge with ``dedup = "last"`` needs to keep the latest row of a key, and a quarantine to name a row.
HIDDEN_FILE = "_pipeline_file"
HIDDEN_ROW = "_pipeline_row"


def export_options(source_file_column: str = "", dedup: str = "refuse", max_bad_rows: int = 0,
                   max_bad_fraction: float = 0) -> str:
    """``Load.options``: the table options that change what a load exports, as canonical JSON ("" for none)."""
    chosen: dict = {"source_file_column": source_file_column} if source_file_column else {}
    if dedup == "last":
        chosen["dedup"] = dedup
    if max_bad_rows or max_bad_fraction:
        chosen["max_bad_rows"], chosen["max_bad_fraction"] = max_bad_rows, max_bad_fraction
    return json.dumps(chosen, sort_keys=True, separators=(",", ":")) if chosen else ""


def staging_name(load_id: str) -> str:
    """The staging table's name (in the state schema) of load ``load_id``."""
    return f"load_{load_id}"


class Load(NamedTuple):
    """One load: the whole source folder (``replace``), or the files not yet in the table - an increment, its
    files listed in ``increment_file`` - added to it (``append``) or merged into it on ``key``, comma-separated
    column names (``merge``). ``fingerprint`` is the digest of its files; ``options``, the table options that change
    the chunks (``export_options``)."""

    table: str
    source: str
    chunk_rows: int
    fingerprint: str
    mode: str = "replace"
    key: str = ""
    options: str = ""

    @property
    def load_id(self) -> str:
        parts = [MAPPING_VERSION, self.table, self.source, str(self.chunk_rows), self.fingerprint]
        if self.mode != "replace":  # a replace load keeps the id it had before there were modes
            parts += [self.mode, self.key]
        if self.options:  # and a load without options the id it had before there were options
            parts += [self.options]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    @property
    def file_column(self) -> str:
        """The column the load adds with each row's file name: ``source_file_column``, a hidden one for a merge
        that keeps the latest row of a key, or none ("")."""
        chosen = self._chosen
        return chosen.get("source_file_column") or (HIDDEN_FILE if {"dedup", "max_bad_rows"} & chosen.keys() else "")

    @property
    def row_column(self) -> str:
        """The hidden column the load adds with each row's index in its file, or none ("")."""
        return HIDDEN_ROW if {"dedup", "max_bad_rows"} & self._chosen.keys() else ""

    @property
    def bad_row_budget(self) -> tuple[int, float] | None:
        """(max_bad_rows, max_bad_fraction) of a load that quarantines bad rows (``badrows``), else None."""
        chosen = self._chosen
        return (chosen["max_bad_rows"], chosen["max_bad_fraction"]) if "max_bad_rows" in chosen else None

    @property
    def dedup(self) -> bool:
        """Whether the merge keeps the latest row of a key (``dedup = "last"``)."""
        return "dedup" in self._chosen

    @property
    def _chosen(self) -> dict:
        return json.loads(self.options) if self.options else {}

    @property
    def incremental(self) -> bool:
        return self.mode != "replace"

    @property
    def key_columns(self) -> list[str]:
        return self.key.split(",") if self.key else []

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
        """The file whose lock the exporting process holds (``steps.exporting``)."""
        return export_folder.with_name(f".{export_folder.name}.lock")

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
