"""What an ``append`` load takes: the files of the folder not yet recorded as published, and the recorded
ones that were rewritten or removed since. Reads one ``stat`` per file (the listing) and the footer of new
files and of recorded files whose size or mtime changed - never the footers of the files already loaded."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple, Protocol

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..model.plan import Plan, SourceFile
from ..types.text import csv_field
from .footers import footer_digest


class Recorded(Protocol):
    size: int
    mtime_ns: int
    digest: str


class Pending(NamedTuple):
    new: list[SourceFile]
    rewritten: list[SourceFile]  # recorded, and changed since
    removed: list[str]
    incomplete: list[str]  # new files still being written: no footer yet, or modified within the settle time


def pending(folder: str, files: list[SourceFile], recorded: dict[str, Recorded], settle_seconds: float = 0) -> Pending:
    """Sort the folder's ``files`` against the ``recorded`` ones (by name). A new file modified less than
    ``settle_seconds`` ago counts as still being written."""
    root = Path(folder)
    new, rewritten, incomplete = [], [], []
    settled = time.time_ns() - int(settle_seconds * 1e9)
    for f in files:
        known = recorded.get(f.name)
        if known is None:
            complete = f.mtime_ns <= settled and footer_digest(root / f.name) is not None
            (new if complete else incomplete).append(f)
        elif (known.size, known.mtime_ns) != (f.size, f.mtime_ns):
            # touched or copied with its content unchanged: the same size and footer
            digest = footer_digest(root / f.name)
            if known.size != f.size or digest != known.digest:
                (rewritten if digest is not None and f.mtime_ns <= settled else incomplete).append(f)
    names = {f.name for f in files}
    return Pending(new, rewritten, sorted(set(recorded) - names), [f.name for f in incomplete])


class Increment(NamedTuple):
    """The files of an increment, fixed when it is scheduled (its load's ``files.json``)."""

    files: list[SourceFile]  # as they were listed then
    whole_table: bool  # the table held no load then: the increment becomes the table
    rewritten: dict[str, list]  # files it loads again: the (size, mtime_ns, digest) recorded for them then

    def write(self, path: Path) -> None:
        """Write it to ``path`` at once (a rename), or not at all."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"whole_table": self.whole_table, "files": [asdict(f) for f in self.files],
                                   "rewritten": self.rewritten}))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Increment:
        raw = json.loads(path.read_text())
        return cls([SourceFile(**f) for f in raw["files"]], raw["whole_table"], raw.get("rewritten", {}))


def stat_files(folder: str, files: list[SourceFile]) -> list[SourceFile]:
    """The listed ``files`` as they are now (another size or mtime if they changed); a vanished one is left out."""
    root = Path(folder)
    found = []
    for f in files:
        try:
            st = (root / f.name).stat()
        except FileNotFoundError:
            continue
        found.append(SourceFile(f.name, st.st_size, st.st_mtime_ns))
    return found


def files_holding(plan: Plan, fields: list[str]) -> list[str]:
    """The increment's files holding a row whose key columns (``plan.key``) export as ``fields`` (CSV fields):
    to name them when a key occurs twice. Reads the key columns only."""
    columns = {c.name: c for c in plan.columns}
    found = []
    for f in plan.files:
        table = pq.read_table(Path(plan.source) / f.name, columns=plan.key)
        match = None
        for name, field in zip(plan.key, fields, strict=True):
            equal = pc.equal(csv_field(columns[name], table.column(name).combine_chunks()), field)
            match = equal if match is None else pc.and_(match, equal)
        if pc.any(match).as_py():
            found.append(f.name)
    return found
