"""The statistics algebra: adding up, comparing, refusals, and the flat form on disk."""

from __future__ import annotations

import math

from pipeline.types.mapping import Column, Kind
from pipeline.verification.stats import (
    CHECKSUM_ONLY,
    ColumnStats,
    FloatStats,
    Refusal,
    Stats,
    changed_columns,
    combine,
    differences,
)

COLUMNS = [Column("id", "int64", "bigint", Kind.PLAIN), Column("x", "double", "double precision", Kind.PLAIN),
           Column("name", "string", "text", Kind.TEXT), Column("day", "date32[day]", "date", Kind.DATE)]


def stats(rows=2, checksum=10, nulls=(0, 0, 0, 0), nan=0, low=1.0, high=2.0, hashed=5, refused=None) -> Stats:
    return Stats(rows, checksum, [ColumnStats(nulls[0]), FloatStats(nulls[1], {}, nan, low, high, hashed),
                                  ColumnStats(nulls[2], dict(refused or {})), ColumnStats(nulls[3])])


def test_statistics_add_up_counts_and_keep_the_extremes():
    total = combine([stats(low=1.0, high=2.0, nulls=(1, 0, 2, 0)), stats(low=-3.0, high=1.5, nulls=(0, 1, 0, 1))],
                    COLUMNS)
    assert (total.rows, total.checksum) == (4, 20)
    assert [c.nulls for c in total.columns] == [1, 1, 2, 1]
    x = total.columns[1]
    assert (x.min, x.max, x.hash) == (-3.0, 2.0, 10)


def test_nan_sorts_above_every_number_and_none_means_no_values():
    total = combine([stats(low=None, high=None, hashed=0), stats(low=math.nan, high=math.nan, nan=1),
                     stats(low=-1.0, high=7.0)], COLUMNS)
    x = total.columns[1]
    assert x.min == -1.0 and math.isnan(x.max) and x.nan == 1
    assert combine([], COLUMNS) == Stats.empty(COLUMNS)


def test_equal_statistics_have_no_differences_even_with_nan():
    assert differences(COLUMNS, stats(low=math.nan, high=math.nan), stats(low=math.nan, high=math.nan)) == []


def test_differences_name_the_column_and_what_differs():
    problems = differences(COLUMNS, stats(nulls=(0, 0, 3, 0), high=2.0), stats(nulls=(0, 0, 2, 0), high=2.5))
    assert problems == ["column 'x': max 2.0 in the source, 2.5 loaded",
                        "column 'name': NULL count 3 in the source, 2 loaded"]


def test_a_checksum_alone_is_reported_as_such_and_per_column_sums_name_the_columns():
    assert differences(COLUMNS, stats(checksum=1), stats(checksum=2)) == [CHECKSUM_ONLY]
    assert changed_columns(COLUMNS, {0: 1, 2: 5}, {0: 1, 2: 6}).endswith("values were changed in column 'name'")
    assert "no single column" in changed_columns(COLUMNS, {0: 1}, {0: 1})


def test_refusals_are_counted_per_column_and_said_in_one_sentence_each():
    total = combine([stats(refused={Refusal.NUL: 2}), stats(refused={Refusal.NUL: 1})], COLUMNS)
    assert total.refusals(COLUMNS) == [
        "3 value(s) of column 'name' with a NUL byte; PostgreSQL text and jsonb cannot store NUL"]
    assert stats().refusals(COLUMNS) == []


def test_the_flat_form_on_disk_is_the_one_earlier_versions_wrote():
    written = stats(nulls=(1, 0, 0, 0), refused={Refusal.NUL: 4}).to_json()
    assert written == {"rows": 2, "checksum": 10, "nulls_0": 1, "nulls_1": 0, "nan_1": 0, "min_1": 1.0,
                       "max_1": 2.0, "hash_1": 5, "nulls_2": 0, "nul_2": 4, "nulls_3": 0}
    assert Stats.from_json(COLUMNS, written) == stats(nulls=(1, 0, 0, 0), refused={Refusal.NUL: 4})
    # as an earlier version wrote it: zero refusal counts present, keys in another order
    earlier = {"rows": 2, "checksum": 10, "nulls_0": 1, "nulls_1": 0, "nan_1": 0, "min_1": 1.0, "max_1": 2.0,
               "hash_1": 5, "nulls_2": 0, "nulls_3": 0, "nul_2": 0, "oor_3": 0}
    assert Stats.from_json(COLUMNS, earlier) == stats(nulls=(1, 0, 0, 0))


def test_values_in_query_order_make_statistics():
    from decimal import Decimal

    values = [2, Decimal(10), 0, 0, 0, Decimal("1.0"), Decimal("2.0"), Decimal(5), 0, 0, 4, None]
    assert Stats.from_values(COLUMNS, values) == stats(refused={Refusal.NUL: 4})
    empty = Stats.from_values(COLUMNS, [0, None, 0, 0, 0, None, None, None, 0, 0])
    assert empty == Stats(0, 0, [ColumnStats(), FloatStats(), ColumnStats(), ColumnStats()])
