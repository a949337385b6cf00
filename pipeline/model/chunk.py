"""A chunk: one part of a load, loaded into PostgreSQL in one transaction; and the manifest of a
chunk set, written when every chunk is exported.

A ``Chunk`` owns its names - its folder inside the chunk set, its ledger key, and (``part_name``)
its part files, CSV or PostgreSQL's binary COPY format - so nothing else formats them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..types.mapping import Column
from ..verification.rowhash import Checksum
from ..verification.stats import Stats
from .load import MANIFEST

BINARY = ".bin"  # the suffix of a part file in PostgreSQL's binary COPY format ([export] chunk_format)


def part_name(number: int, binary: bool) -> str:
    """The name of a chunk's part file ``number`` (Spark writes one per task), CSV or ``binary``."""
    return f"part-{number:05d}{BINARY if binary else '.csv'}"


def is_binary(part: Path) -> bool:
    """Whether a part file is in PostgreSQL's binary COPY format (else CSV): what its COPY reads it as."""
    return part.suffix == BINARY


class Chunk(NamedTuple):
    load_id: str
    index: int

    @property
    def dirname(self) -> str:
        return f"chunk-{self.index:05d}"

    def files(self, chunk_set: Path) -> list[Path]:
        """The chunk's part files (Spark may split one chunk over several)."""
        folder = chunk_set / self.dirname
        return sorted(p for p in folder.iterdir() if p.name.startswith("part-") and p.suffix != ".crc")

    def __str__(self) -> str:
        return f"chunk {self.index} of load {self.load_id}"


@dataclass(frozen=True)
class Manifest:
    """Each chunk's rows and source statistics, and the row hash the statistics use."""

    load_id: str
    checksum: Checksum
    chunk_rows: list[int]
    chunk_stats: list[Stats]

    @property
    def rows(self) -> int:
        return sum(self.chunk_rows)

    def write(self, chunk_set: Path) -> None:
        raw = {
            "load_id": self.load_id,
            "rows": self.rows,
            "checksum": str(self.checksum),
            "chunks": [{"index": i, "dir": Chunk(self.load_id, i).dirname, "rows": n, "stats": s.to_json()}
                       for i, (n, s) in enumerate(zip(self.chunk_rows, self.chunk_stats, strict=True))],
        }
        tmp = chunk_set / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(raw, indent=1))
        os.replace(tmp, chunk_set / MANIFEST)

    @classmethod
    def read(cls, path: Path, columns: list[Column]) -> Manifest:
        raw = json.loads(path.read_text())
        chunks = sorted(raw["chunks"], key=lambda c: c["index"])
        return cls(raw["load_id"], Checksum(raw.get("checksum", Checksum.MD5)), [c["rows"] for c in chunks],
                   [Stats.from_json(columns, c["stats"]) for c in chunks])
