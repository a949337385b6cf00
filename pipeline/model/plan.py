"""What one load will do: the source files, their rows, the columns and the chunks (``plan.json``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from ..types.mapping import Column
from .options import HIDDEN_FILE, LoadOptions


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
    options: LoadOptions = LoadOptions()  # the load's
    whole_table: bool = True  # an increment: scheduled when the table held no load, so it becomes the table
    # an increment's files whose earlier rows it replaces: the (size, mtime_ns, digest) recorded for them
    rewritten: dict[str, list] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.options.mode

    @property
    def incremental(self) -> bool:
        return self.options.incremental

    @property
    def key(self) -> list[str]:
        """merge: the columns that identify a row."""
        return list(self.options.key)

    @property
    def dedup(self) -> bool:
        """merge: of rows sharing a key, keep the latest file's last (``dedup = "last"``)."""
        return self.options.dedup

    @property
    def file_column(self) -> str:
        """The column, last but one in ``columns`` (or last), the load adds with each row's file name, or ""."""
        return self.options.file_column

    @property
    def row_column(self) -> str:
        """The column, last in ``columns``, the load adds with each row's index in its file, or ""."""
        return self.options.row_column

    @property
    def quarantine(self) -> bool:
        """Whether the load sets bad rows aside (then ``file_column`` and ``row_column`` give their coordinates)."""
        return self.options.quarantine

    @property
    def budget(self) -> int | None:
        """With a bad-row budget (``badrows``): the most rows the load may quarantine; None: it refuses any."""
        return self.options.budget(self.total_rows)

    @property
    def parquet_columns(self) -> list[Column]:
        """The columns read from the files."""
        return [c for c in self.columns if c.name not in (self.file_column, self.row_column)]

    @property
    def table_columns(self) -> list[Column]:
        """The columns of the table (the staging table may hold hidden ones more: those the plan adds)."""
        return [c for c in self.columns if c.name not in self.options.hidden_columns]

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
        raw = asdict(self)
        raw["options"] = self.options.chosen()
        return json.dumps(raw, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        raw["files"] = [SourceFile(**f) for f in raw["files"]]
        raw["columns"] = [Column.from_json(c) for c in raw["columns"]]
        raw["options"] = LoadOptions.from_chosen(raw["options"]) if "options" in raw else _options(raw)
        return cls(**raw)


def _options(raw: dict) -> LoadOptions:
    """The options of a plan written by a version whose plans held them as fields of their own (popped from
    ``raw``): its budget was the number of rows, the limits it came from are not needed."""
    fields = {name: raw.pop(name, None) for name in ("mode", "key", "file_column", "row_column", "budget", "dedup")}
    file_column = fields["file_column"] or ""
    return LoadOptions(fields["mode"] or "replace", tuple(fields["key"] or ()),
                       file_column if file_column != HIDDEN_FILE else "",
                       bool(fields["dedup"] if fields["dedup"] is not None else fields["row_column"]),
                       None if fields["budget"] is None else (fields["budget"], 0))
