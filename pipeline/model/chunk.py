"""A chunk: one CSV part of a load, loaded into PostgreSQL in one transaction.

A ``Chunk`` owns its names - its folder inside the chunk set and its ledger key - so
nothing else formats them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

MANIFEST = "_manifest.json"


class Chunk(NamedTuple):
    load_id: str
    index: int

    @property
    def dirname(self) -> str:
        return f"chunk-{self.index:05d}"

    def files(self, chunk_set: Path) -> list[Path]:
        """The chunk's CSV part files (Spark may split one chunk over several)."""
        folder = chunk_set / self.dirname
        return sorted(p for p in folder.iterdir() if p.name.startswith("part-") and p.suffix != ".crc")

    def __str__(self) -> str:
        return f"chunk {self.index} of load {self.load_id}"


def write_manifest(chunk_set: Path, load_id: str, chunk_rows: list[int], chunk_stats: list[dict],
                   checksum: str) -> None:
    """The manifest: each chunk's folder, rows and source statistics (see ``verify``; ``checksum``
    names the row hash the statistics use)."""
    manifest = {
        "load_id": load_id,
        "rows": sum(chunk_rows),
        "checksum": checksum,
        "chunks": [{"index": i, "dir": Chunk(load_id, i).dirname, "rows": n, "stats": s}
                   for i, (n, s) in enumerate(zip(chunk_rows, chunk_stats, strict=True))],
    }
    tmp = chunk_set / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, chunk_set / MANIFEST)


def read_manifest(chunk_set: Path) -> dict:
    return json.loads((chunk_set / MANIFEST).read_text())
