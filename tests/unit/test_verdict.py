"""The judgement of a verified load (``steps.verdict``): the source statistics come from the Arrow engine's own
per-batch core over real batches, the loaded ones from the same statistics over the rows the staging table holds."""

from __future__ import annotations

import io
import math
import re
from dataclasses import replace

import pyarrow as pa
import pytest

from pipeline.engines.core import CHECKSUM, write_batches
from pipeline.errors import VerificationError
from pipeline.model.chunk import Manifest
from pipeline.model.options import HIDDEN_FILE, HIDDEN_ROW, LoadOptions
from pipeline.model.plan import Plan, SourceFile
from pipeline.steps import verdict
from pipeline.types.mapping import pg_column
from pipeline.types.text import csv_field
from pipeline.verification.batch import batch_stats
from pipeline.verification.pghash import hash_sum
from pipeline.verification.stats import Stats, combine

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("x", pa.float64())])
COLUMNS = [pg_column(f.name, f.type) for f in SCHEMA]
HIDDEN = [pg_column(HIDDEN_FILE, pa.string()), pg_column(HIDDEN_ROW, pa.int64())]
ROWS = {"id": [1, 2, 3, 4], "name": ["a", 'b,"q"', None, "d"], "x": [0.5, math.nan, -1.25, 2.5]}
WHERE = "shop.orders (source '/data/orders') does not verify"


def _plan(file_rows: tuple[int, ...] = (2, 2), budget: int | None = None) -> Plan:
    """A load of one chunk per file; with a bad-row ``budget``, the hidden file and row columns it adds."""
    files = [SourceFile(f"part-{i}.parquet", 1_000, 1) for i in range(len(file_rows))]
    columns = COLUMNS + HIDDEN if budget is not None else COLUMNS
    return Plan("load1", "shop.orders", "/data/orders", files, list(file_rows), columns,
                [[i] for i in range(len(file_rows))],
                options=LoadOptions(bad_rows=None if budget is None else (budget, 0)))


def _batch(plan: Plan, rows: dict | None = None, take: list[int] | None = None) -> pa.RecordBatch:
    """The rows (``ROWS``, changed by ``rows``) at ``take`` in the plan's columns, all from file part-0."""
    values = {**ROWS, **(rows or {})}
    take = list(range(len(ROWS["id"]))) if take is None else take
    arrays = [pa.array([values[f.name][i] for i in take], f.type) for f in SCHEMA]
    if plan.quarantine:
        arrays += [pa.array(["part-0.parquet"] * len(take)), pa.array(take, pa.int64())]
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in plan.columns])


def _exported(plan: Plan, batch: pa.RecordBatch) -> Stats:
    """The source statistics of a chunk as the export computes them (the per-batch core both engines run)."""
    return write_batches(plan, [batch], io.BytesIO())[0]


def _manifest(plan: Plan, chunks: list[pa.RecordBatch]) -> Manifest:
    """The chunk manifest of an export of ``chunks``: each one's rows (those set aside too) and statistics."""
    stats = [_exported(plan, chunk) for chunk in chunks]
    return Manifest(plan.load_id, CHECKSUM, [s.rows + s.quarantined for s in stats], stats)


def _measured(plan: Plan, batch: pa.RecordBatch, quarantined: int = 0) -> Stats:
    """The statistics of rows as loaded (what measuring the staging table gives for them), ``quarantined`` rows
    counted in the quarantine table."""
    fields = [csv_field(c, batch.column(i)) for i, c in enumerate(plan.columns)]
    return replace(batch_stats(plan.columns, batch, fields, CHECKSUM), quarantined=quarantined)


def _column_sums(plan: Plan, batch: pa.RecordBatch) -> dict[int, int]:
    """Per non-float column: the sum of hashtextextended of its CSV fields (``engines.arrow.column_checksums``)."""
    return {i: hash_sum(csv_field(c, batch.column(i))) for i, c in enumerate(plan.columns) if not c.is_float}


def _not_read():
    pytest.fail("the per-column checksums are read only when nothing but the row checksum differs")


def _two_chunks() -> tuple[Plan, Manifest]:
    plan = _plan()
    return plan, _manifest(plan, [_batch(plan, take=[0, 1]), _batch(plan, take=[2, 3])])


def test_a_load_whose_counts_and_statistics_agree_passes_with_its_record():
    plan, manifest = _two_chunks()
    staged = _measured(plan, _batch(plan, take=[3, 1, 0, 2]))  # the table's order is not the files'
    record = verdict(plan, manifest, staged, 4, 2, _not_read)
    source = combine(manifest.chunk_stats, plan.columns)
    assert record == {"source_rows": 4, "manifest_rows": 4, "source": source.to_json(), "loaded": staged.to_json()}
    assert record["source"] == record["loaded"] and record["source"]["rows"] == 4 and record["source"]["nan_2"] == 1


@pytest.mark.parametrize("take, ledger_rows, ledger_chunks, counts", [
    ([0, 1, 3], 3, 2, "PostgreSQL 3 (ledger: 3 rows in 2 of 2 chunks)"),  # a row lost
    ([0, 1, 2, 3, 3], 5, 2, "PostgreSQL 5 (ledger: 5 rows in 2 of 2 chunks)"),  # a row loaded twice
    ([0, 1, 2, 3], 5, 2, "PostgreSQL 4 (ledger: 5 rows in 2 of 2 chunks)"),  # the ledger disagrees
    ([0, 1, 2, 3], 4, 1, "PostgreSQL 4 (ledger: 4 rows in 1 of 2 chunks)"),  # a chunk missing from the ledger
])
def test_a_count_that_differs_is_refused_with_every_count(take, ledger_rows, ledger_chunks, counts):
    plan, manifest = _two_chunks()
    with pytest.raises(VerificationError) as error:
        verdict(plan, manifest, _measured(plan, _batch(plan, take=take)), ledger_rows, ledger_chunks, _not_read)
    assert str(error.value) == (f"{WHERE}: the source has 4 rows, the chunk manifest 4, {counts}; "
                                "nothing was published")


def test_a_manifest_that_lost_a_row_is_refused():
    plan = _plan()
    manifest = _manifest(plan, [_batch(plan, take=[0]), _batch(plan, take=[2, 3])])
    with pytest.raises(VerificationError, match=re.escape("the source has 4 rows, the chunk manifest 3, PostgreSQL 3 "
                                                          "(ledger: 3 rows in 2 of 2 chunks)")):
        verdict(plan, manifest, _measured(plan, _batch(plan, take=[0, 2, 3])), 3, 2, _not_read)


def test_a_changed_value_found_by_the_row_checksum_alone_is_named_by_the_per_column_checksums():
    plan, manifest = _two_chunks()
    changed = _batch(plan, {"name": ["a", 'b,"Q"', None, "d"]})
    reads = []

    def column_sums():
        reads.append(1)
        return _column_sums(plan, _batch(plan)), _column_sums(plan, changed)

    with pytest.raises(VerificationError) as error:
        verdict(plan, manifest, _measured(plan, changed), 4, 2, column_sums)
    assert str(error.value) == (f"{WHERE}: the row checksum differs (rows and every column's NULL count agree): "
                                "values were changed in column 'name'; nothing was published")
    assert reads == [1]


def test_values_changed_in_two_columns_are_both_named():
    plan, manifest = _two_chunks()
    changed = _batch(plan, {"id": [1, 2, 3, 5], "name": ["a", 'b,"q"', None, "e"]})
    with pytest.raises(VerificationError, match=re.escape("values were changed in columns 'id', 'name'; nothing")):
        verdict(plan, manifest, _measured(plan, changed), 4, 2,
                lambda: (_column_sums(plan, _batch(plan)), _column_sums(plan, changed)))


def test_a_checksum_that_no_single_column_explains_says_so():
    plan, manifest = _two_chunks()
    changed = _batch(plan, {"name": ["a", 'b,"Q"', None, "d"]})
    sums = _column_sums(plan, _batch(plan))
    with pytest.raises(VerificationError, match="values were changed, though no single column's checksum differs"):
        verdict(plan, manifest, _measured(plan, changed), 4, 2, lambda: (sums, sums))


def test_a_changed_float_is_named_by_its_own_statistics():
    plan, manifest = _two_chunks()
    staged = _measured(plan, _batch(plan, {"x": [0.75, math.nan, -1.25, 2.5]}))  # neither the min nor the max
    source = combine(manifest.chunk_stats, plan.columns)
    with pytest.raises(VerificationError) as error:
        verdict(plan, manifest, staged, 4, 2, _not_read)
    assert str(error.value) == (f"{WHERE}: column 'x': value checksum {source.columns[2].hash} in the source, "
                                f"{staged.columns[2].hash} loaded; nothing was published")


def test_a_value_loaded_as_null_is_named_by_its_column_null_count():
    plan, manifest = _two_chunks()
    staged = _measured(plan, _batch(plan, {"name": ["a", None, None, "d"]}))
    with pytest.raises(VerificationError) as error:
        verdict(plan, manifest, staged, 4, 2, _not_read)
    assert str(error.value) == f"{WHERE}: column 'name': NULL count 1 in the source, 2 loaded; nothing was published"


# --- with a bad-row budget: every source row is loaded, refused by COPY or set aside by the export ---------------

BAD_NAME = {"name": ["a", "b\x00", None, "d"]}  # row 1: a NUL byte, which the export sets aside


def test_rows_the_export_set_aside_verify_when_the_quarantine_holds_them():
    plan = _plan(file_rows=(4,), budget=5)
    manifest = _manifest(plan, [_batch(plan, BAD_NAME)])
    assert manifest.chunk_stats[0].quarantined == 1 and manifest.rows == 4
    staged = _measured(plan, _batch(plan, BAD_NAME, take=[0, 2, 3]), quarantined=1)
    record = verdict(plan, manifest, staged, 3, 1, _not_read)
    assert (record["source_rows"], record["source"]["rows"], record["source"]["quarantined"]) == (4, 3, 1)
    assert record["source"] == record["loaded"]


@pytest.mark.parametrize("take, quarantined, counts", [
    ([0, 2, 3], 0, "PostgreSQL 3 and 0 in its quarantine where the export set aside 1 (ledger: 3 rows in 1 of 1"),
    ([0, 2, 3], 2, "PostgreSQL 3 and 2 in its quarantine where the export set aside 1 (ledger: 3 rows in 1 of 1"),
    # the row counts add up, but the bad row was loaded instead of quarantined
    ([0, 1, 2, 3], 0, "PostgreSQL 4 and 0 in its quarantine where the export set aside 1 (ledger: 4 rows in 1 of 1"),
])
def test_a_quarantine_that_does_not_hold_what_the_export_set_aside_is_refused(take, quarantined, counts):
    plan = _plan(file_rows=(4,), budget=5)
    manifest = _manifest(plan, [_batch(plan, BAD_NAME)])
    staged = _measured(plan, _batch(plan, BAD_NAME, take=take), quarantined)
    with pytest.raises(VerificationError) as error:
        verdict(plan, manifest, staged, len(take), 1, _not_read)
    assert str(error.value) == (f"{WHERE}: the source has 4 rows, the chunk manifest 4, {counts} chunks); "
                                "nothing was published")


def test_rows_copy_refused_count_as_loaded_with_their_source_statistics():
    plan = _plan(file_rows=(4,), budget=5)
    manifest = _manifest(plan, [_batch(plan)])
    staged = _measured(plan, _batch(plan, take=[0, 1, 3]))
    refused = _measured(plan, _batch(plan, take=[2]))  # as ``engines.arrow.rows_stats`` reads them again
    record = verdict(plan, manifest, staged, 3, 1, _not_read, refused)
    assert record["loaded"] == record["source"] and record["loaded"]["rows"] == 4
    with pytest.raises(VerificationError, match="PostgreSQL 3 and 0 in its quarantine where the export set aside 0"):
        verdict(plan, manifest, staged, 3, 1, _not_read)
