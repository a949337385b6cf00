"""A source folder's files and its identity.

A load is identified by its source's *identity*: every file's name, size and modification
time. Reading that costs one ``stat`` per file, so a rerun can tell "nothing changed"
without starting Spark.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import SourceError
from ..model.plan import SourceFile


def list_files(folder: str | os.PathLike) -> list[SourceFile]:
    """Every data file in ``folder``, sorted by name; names starting with '.' or '_' are skipped
    (Hadoop/Spark markers such as _SUCCESS and .crc files)."""
    root = Path(folder)
    if not root.exists():
        raise SourceError(f"source folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise SourceError(f"source {str(root)!r} is not a folder")
    files = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir():
                raise SourceError(f"source folder {str(root)!r} contains a sub-folder {entry.name!r}; "
                                  "only a flat folder of Parquet files can be loaded")
            st = entry.stat()
            files.append(SourceFile(entry.name, st.st_size, st.st_mtime_ns))
    if not files:
        raise SourceError(f"source folder {str(root)!r} holds no Parquet files")
    return sorted(files, key=lambda f: f.name)


def fingerprint(files: list[SourceFile]) -> str:
    """A digest of the source's identity: names, sizes and modification times."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}\0{f.size}\0{f.mtime_ns}\n".encode())
    return digest.hexdigest()[:32]
