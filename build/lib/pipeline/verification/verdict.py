"""The verdict on a load: source rows = manifest rows = loaded rows = ledger rows, and the source's
statistics equal the loaded ones; otherwise one sentence saying what differs."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import VerificationError
from ..model.chunk import Manifest
from ..model.plan import Plan
from .stats import CHECKSUM_ONLY, Stats, changed_columns, combine, differences


def verdict(plan: Plan, manifest: Manifest, loaded: Stats, ledger_rows: int, ledger_chunks: int,
            column_sums: Callable[[], tuple[dict[int, int], dict[int, int]]]) -> dict:
    """The record of a verified load (``verified.json``), or ``VerificationError`` naming the difference.
    ``column_sums``: (source, loaded) per-column checksums, read only to name the columns when nothing but
    the row checksum differs."""
    where = f"{plan.table} (source {plan.source!r}) does not verify"
    counts = (plan.total_rows, manifest.rows, loaded.rows)
    chunks = len(manifest.chunk_rows)
    if len(set(counts)) != 1 or ledger_rows != loaded.rows or ledger_chunks != chunks:
        raise VerificationError(
            f"{where}: the source has {counts[0]:,} rows, the chunk manifest {counts[1]:,}, PostgreSQL "
            f"{counts[2]:,} (ledger: {ledger_rows:,} rows in {ledger_chunks} of {chunks} chunks); "
            "nothing was published")
    source = combine(manifest.chunk_stats, plan.columns)
    problems = differences(plan.columns, source, loaded)
    if problems == [CHECKSUM_ONLY]:
        problems = [changed_columns(plan.columns, *column_sums())]
    if problems:
        raise VerificationError(f"{where}: {'; '.join(problems)}; nothing was published")
    return {"source_rows": counts[0], "manifest_rows": counts[1], "source": source.to_json(),
            "loaded": loaded.to_json()}
