"""``LoadOptions``: how a table is loaded, as config/ declares it (or the command line overrides it) - one frozen
value that flows unchanged from the catalog to the tasks (one task parameter) and into the plan.

Only standard-library imports: the plan, and with it these options, is shipped to Spark's executors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

MODES = ("replace", "append", "merge")
# Columns a load adds to the staging table and not to the table: each row's file name and its index in the file,
# which a merge with ``dedup = "last"`` needs to keep the latest row of a key, and a quarantine to name a row.
HIDDEN_FILE = "_pipeline_file"
HIDDEN_ROW = "_pipeline_row"


@dataclass(frozen=True)
class LoadOptions:
    """How a table is loaded. ``mode``: replace (the table becomes the folder), append (the files not yet loaded
    are added) or merge (merged on ``key``). ``source_file_column``: a column holding each row's file name.
    ``dedup``: a merge keeps the latest row of a key (``dedup = "last"``). ``bad_rows``: the bad-row budget
    (max_bad_rows, max_bad_fraction), None: refused. ``primary_key``, ``indexes``: made on every table
    published."""

    mode: str = "replace"
    key: tuple[str, ...] = ()
    source_file_column: str = ""
    dedup: bool = False
    bad_rows: tuple[int, float] | None = None
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def incremental(self) -> bool:
        """Whether a load is an increment of the table (append, merge) rather than the whole of it."""
        return self.mode != "replace"

    @property
    def quarantine(self) -> bool:
        """Whether the load sets bad rows aside (``badrows``); then ``file_column`` and ``row_column`` name them."""
        return self.bad_rows is not None

    @property
    def file_column(self) -> str:
        """The column the load adds with each row's file name: ``source_file_column``, a hidden one for a merge
        that keeps the latest row of a key or a load with a bad-row budget, or none ("")."""
        return self.source_file_column or (HIDDEN_FILE if self.dedup or self.quarantine else "")

    @property
    def row_column(self) -> str:
        """The hidden column the load adds with each row's index in its file, or none ("")."""
        return HIDDEN_ROW if self.dedup or self.quarantine else ""

    @property
    def hidden_columns(self) -> tuple[str, ...]:
        """The columns of the staging table that the table does not get."""
        return tuple(c for c in (self.file_column, self.row_column) if c in (HIDDEN_FILE, HIDDEN_ROW))

    def budget(self, rows: int) -> int | None:
        """The most bad rows a load of ``rows`` rows may quarantine: the greater of the two limits; None: none."""
        if self.bad_rows is None:
            return None
        return max(self.bad_rows[0], math.floor(self.bad_rows[1] * rows))

    def id_parts(self) -> list[str]:
        """What the options add to a load's id: the mode and key of an increment, then the options that change
        the rows or chunks as canonical JSON; nothing for a plain replace. The declared indexes change neither.
        These are the parts of the ids earlier versions gave (pinned in the unit tests): a load they left half
        done resumes."""
        parts = [self.mode, ",".join(self.key)] if self.incremental else []
        chunks: dict = {"source_file_column": self.source_file_column} if self.source_file_column else {}
        if self.dedup:
            chunks["dedup"] = "last"
        if self.bad_rows is not None:
            chunks["max_bad_rows"], chunks["max_bad_fraction"] = self.bad_rows
        if chunks:
            parts.append(json.dumps(chunks, sort_keys=True, separators=(",", ":")))
        return parts

    def chosen(self) -> dict:
        """The options that differ from the defaults, as JSON values (the form a plan stores)."""
        default = LoadOptions()
        return {k: v for k, v in asdict(self).items() if v != getattr(default, k)}

    def to_json(self) -> str:
        """Canonical JSON of ``chosen`` ("" for none): the task parameter."""
        chosen = self.chosen()
        return json.dumps(chosen, sort_keys=True, separators=(",", ":")) if chosen else ""

    @classmethod
    def from_json(cls, text: str) -> LoadOptions:
        return cls.from_chosen(json.loads(text) if text else {})

    @classmethod
    def from_chosen(cls, raw: dict) -> LoadOptions:
        """The options ``chosen`` gave (lists back to tuples)."""
        raw = dict(raw)
        for name in ("key", "primary_key"):
            if name in raw:
                raw[name] = tuple(raw[name])
        if "indexes" in raw:
            raw["indexes"] = tuple(tuple(index) for index in raw["indexes"])
        if raw.get("bad_rows") is not None:
            raw["bad_rows"] = tuple(raw["bad_rows"])
        return cls(**raw)
