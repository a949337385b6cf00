"""Content statistics: one typed value both engines fill over the source rows and PostgreSQL fills over
the loaded ones; a load is published only when the two agree.

* ``rows``, and ``checksum``: an order-independent checksum, the sum over rows of a row hash (see
  ``rowhash``) - any changed, lost or duplicated value changes it;
* ``quarantined``: the rows a load with a bad-row budget set aside (``quarantine``) rather than loaded; the
  other statistics are those of the rows loaded. On the loaded side, the rows the quarantine table holds;
* per column (``ColumnStats``): the NULL count, and on the source side the values the load must refuse
  (``Refusal``: a NUL byte in text, a map holding one key twice, a date outside PostgreSQL's range);
* per float column (``FloatStats``): NaN count, minimum, maximum and a checksum of the values themselves
  (the sum of PostgreSQL's ``hashfloat8extended(v, 0)``): Java and PostgreSQL print floats differently,
  so floats are hashed as the double's exact bits rather than as text.

Statistics add up (``+``, ``combine``) from batches to chunks to the whole load. On disk (the chunk
manifest, ``verified.json``) they keep the flat form earlier versions wrote: ``rows``, ``checksum``,
``nulls_<i>``, ``nan_<i>`` ... (``to_json``, ``from_json``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from enum import Enum

from ..types.mapping import Column, Kind


class Refusal(Enum):
    """Values the export counts because PostgreSQL cannot hold them; their key on disk is the value."""

    NUL = "nul"
    OUTSIDE_RANGE = "oor"
    DUPLICATE_KEY = "dup"

    @property
    def reason(self) -> str:
        return {
            Refusal.NUL: "with a NUL byte; PostgreSQL text and jsonb cannot store NUL",
            Refusal.OUTSIDE_RANGE: "outside PostgreSQL's range (from 4714-11-24 BC; dates to 5874897 AD)",
            Refusal.DUPLICATE_KEY: "holding a map with one key twice; a jsonb object keeps only one",
        }[self]


def counted_refusals(column: Column) -> list[Refusal]:
    """The refusals the export counts for a column, in the order it counts them."""
    return ([Refusal.NUL] if column.kind.textual else []) + (
        [Refusal.DUPLICATE_KEY] if column.kind == Kind.JSON else []) + (
        [Refusal.OUTSIDE_RANGE] if column.kind.dated else [])


@dataclass
class ColumnStats:
    nulls: int = 0
    refused: dict[Refusal, int] = field(default_factory=dict)

    def __add__(self, other: ColumnStats) -> ColumnStats:
        return replace(self, nulls=self.nulls + other.nulls, refused=_add_counts(self.refused, other.refused))

    def compared(self) -> list[tuple[str, object]]:
        """What verification compares, with the words it names it by."""
        return [("NULL count", self.nulls)]


@dataclass
class FloatStats(ColumnStats):
    nan: int = 0
    min: float | None = None
    max: float | None = None
    hash: int = 0

    def __add__(self, other: FloatStats) -> FloatStats:
        return replace(super().__add__(other), nan=self.nan + other.nan, hash=self.hash + other.hash,
                       min=_extreme(min, self.min, other.min), max=_extreme(max, self.max, other.max))

    def compared(self) -> list[tuple[str, object]]:
        return [*super().compared(), ("NaN count", self.nan), ("min", self.min), ("max", self.max),
                ("value checksum", self.hash)]


def _add_counts(a: dict, b: dict) -> dict:
    return {key: a.get(key, 0) + b.get(key, 0) for key in {**a, **b}}


def _order(x: float) -> tuple[bool, float]:
    """NaN sorts above every number, as in Spark and PostgreSQL."""
    return (math.isnan(x), 0.0 if math.isnan(x) else x)


def _extreme(pick, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return pick(a, b, key=_order)


@dataclass
class Stats:
    rows: int
    checksum: int
    columns: list[ColumnStats]
    quarantined: int = 0

    @classmethod
    def empty(cls, columns: list[Column]) -> Stats:
        return cls(0, 0, [FloatStats() if c.is_float else ColumnStats() for c in columns])

    def __add__(self, other: Stats) -> Stats:
        return Stats(self.rows + other.rows, self.checksum + other.checksum,
                     [a + b for a, b in zip(self.columns, other.columns, strict=True)],
                     self.quarantined + other.quarantined)

    @classmethod
    def from_values(cls, columns: list[Column], values: Iterable) -> Stats:
        """Statistics from values in the order the measuring queries give them (``measured_order``): rows,
        checksum, then per column its NULL count and, for a float, NaN count, min, max and value checksum;
        then the refusals, per column in ``counted_refusals`` order, where ``with_refusals``."""
        it = iter(values)
        stats = cls(_count(next(it)), _count(next(it)), [])
        for c in columns:
            nulls = _count(next(it))
            stats.columns.append(FloatStats(nulls, {}, _count(next(it)), _number(next(it)), _number(next(it)),
                                            _count(next(it))) if c.is_float else ColumnStats(nulls))
        for c, s in zip(columns, stats.columns, strict=True):
            s.refused = {r: n for r in counted_refusals(c) if (n := _count(next(it, 0)))}
        return stats

    def refusals(self, columns: list[Column]) -> list[str]:
        """What the statistics say cannot be loaded: '<n> value(s) of column <c> <reason>' each."""
        return [f"{s.refused[r]:,} value(s) of column {c.name!r} {r.reason}"
                for r in Refusal for c, s in zip(columns, self.columns, strict=True) if s.refused.get(r)]

    def to_json(self) -> dict:
        out: dict = {"rows": self.rows, "checksum": self.checksum}
        if self.quarantined:
            out["quarantined"] = self.quarantined
        for i, s in enumerate(self.columns):
            out.update({f"{name}_{i}": value for name, value in _flat(s)})
        return out

    @classmethod
    def from_json(cls, columns: list[Column], raw: dict) -> Stats:
        stats = cls.empty(columns)
        stats.rows, stats.checksum, stats.quarantined = raw["rows"], raw["checksum"], raw.get("quarantined", 0)
        for i, s in enumerate(stats.columns):
            for f in fields(s):
                if f.name != "refused" and f"{f.name}_{i}" in raw:
                    setattr(s, f.name, raw[f"{f.name}_{i}"])
            s.refused = {r: raw[f"{r.value}_{i}"] for r in Refusal if raw.get(f"{r.value}_{i}")}
        return stats


def _flat(s: ColumnStats) -> Iterator[tuple[str, object]]:
    for f in fields(s):
        if f.name == "refused":
            yield from ((r.value, n) for r, n in s.refused.items())
        else:
            yield f.name, getattr(s, f.name)


def _count(value) -> int:
    return 0 if value is None else int(value)


def _number(value) -> float | None:
    return None if value is None else float(value)


def combine(parts: Iterable[Stats], columns: list[Column]) -> Stats:
    """The statistics of a whole load from those of its chunks (or of a chunk from its batches)."""
    return sum(parts, Stats.empty(columns))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


CHECKSUM_ONLY = "the row checksum differs (rows and every column's NULL count agree)"


def differences(columns: list[Column], source: Stats, loaded: Stats) -> list[str]:
    """Human-readable differences between the source and the loaded statistics (rows aside)."""
    problems = [f"column {c.name!r}: {what} {a} in the source, {b} loaded"
                for c, s, t in zip(columns, source.columns, loaded.columns, strict=True)
                for (what, a), (_, b) in zip(s.compared(), t.compared(), strict=True) if not _same(a, b)]
    if not problems and source.checksum != loaded.checksum:
        problems.append(CHECKSUM_ONLY)
    return problems


def changed_columns(columns: list[Column], source: dict[int, int], loaded: dict[int, int]) -> str:
    """What per-column checksums say after ``CHECKSUM_ONLY``: which columns' values were changed."""
    names = [repr(columns[i].name) for i in source if source[i] != loaded.get(i)]
    if not names:
        return f"{CHECKSUM_ONLY}: values were changed, though no single column's checksum differs"
    return f"{CHECKSUM_ONLY}: values were changed in column{'s' if len(names) > 1 else ''} {', '.join(names)}"
