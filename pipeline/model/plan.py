"""What one load will do: the source files, their rows, the columns and the chunks (``plan.json``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from ..types.mapping import Column
from .load import HIDDEN_FILE, HIDDEN_ROW


@dataclass(frozen=True)
class SourceFile:
    name: str
    size: int
    mtime_ns: int
    digest: str = ""  # of the footer (``source.footers.footer_digest``), once planning has read it


@dataclass(frozen=True)
class Plan:
    """What one load will do: the source files, their rows, the columns and the chunks."""

    load_id: str
    table: str
    source: str
    files: list[SourceFile]
    file_rows: list[int]
    columns: list[Column]
    chunks: list[list[int]]  # per chunk: indices into ``files``
    # The leaves (Parquet's leaf columns, numbered depth first) inside a list or map, and per file the level
    # entries its footer counts for each: a reader that misreads repetition levels reads other counts.
    repeated_leaves: list[int] = field(default_factory=list)
    file_leaf_entries: list[list[int]] = field(default_factory=list)
    mode: str = "replace"  # the load's (``model.load.MODES``)
    whole_table: bool = True  # an increment: scheduled when the table held no load, so it becomes the table
    key: list[str] = field(default_factory=list)  # merge: the columns that identify a row
    # Columns not read from the files, last in ``columns``: each row's file name, and its index in the file
    file_column: str = ""
    row_column: str = ""
    # an increment's files whose earlier rows it replaces: the (size, mtime_ns, digest) recorded for them
    rewritten: dict[str, list] = field(default_factory=dict)
    # with a bad-row budget (``badrows``): the most rows it may quarantine; None: it refuses any
    budget: int | None = None
    dedup: bool = False  # merge: of rows sharing a key, keep the latest file's last (``dedup = "last"``)

    @property
    def quarantine(self) -> bool:
        """Whether the load sets bad rows aside (then ``file_column`` and ``row_column`` give their coordinates)."""
        return self.budget is not None

    @property
    def incremental(self) -> bool:
        return self.mode != "replace"

    @property
    def parquet_columns(self) -> list[Column]:
        """The columns read from the files."""
        return [c for c in self.columns if c.name not in (self.file_column, self.row_column)]

    @property
    def table_columns(self) -> list[Column]:
        """The columns of the table (the staging table may hold hidden ones more: those the plan adds)."""
        hidden = {self.file_column, self.row_column} & {HIDDEN_FILE, HIDDEN_ROW}
        return [c for c in self.columns if c.name not in hidden]

    @property
    def total_rows(self) -> int:
        return sum(self.file_rows)

    def chunk_rows(self, index: int) -> int:
        return sum(self.file_rows[i] for i in self.chunks[index])

    def describe_chunk(self, index: int) -> str:
        names = [self.files[i].name for i in self.chunks[index]]
        return repr(names[0]) if len(names) == 1 else f"{names[0]!r} .. {names[-1]!r} ({len(names)} files)"

    def chunk_leaf_entries(self, index: int) -> list[int]:
        """Per repeated leaf: the level entries the footers of the chunk's files count."""
        return [sum(self.file_leaf_entries[i][k] for i in self.chunks[index]) for k in range(len(self.repeated_leaves))]

    def chunk_file_rows(self, index: int) -> list[int]:
        return [self.file_rows[i] for i in self.chunks[index]]

    @property
    def column_names(self) -> list[str]:
        """The names of the columns read from the files."""
        return [c.name for c in self.parquet_columns]

    def chunk_paths(self, index: int) -> list[str]:
        return [os.path.join(self.source, self.files[i].name) for i in self.chunks[index]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["files"] = [SourceFile(**f) for f in raw["files"]]
        raw["columns"] = [Column.from_json(c) for c in raw["columns"]]
        if "dedup" not in raw:  # written before bad-row budgets: a row column meant dedup = "last"
            raw["dedup"] = bool(raw.get("row_column"))
        return cls(**raw)
