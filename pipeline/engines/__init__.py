"""The chunk export: ``[export] engine`` picks who reads the Parquet files, Spark or pyarrow.

Both run the same per-batch core (``core``) on what they read: they write the same rows (one
CSV line per row in PostgreSQL's text forms, or its binary COPY format: ``[export] chunk_format``)
and observe the same source statistics, with the same row hash (``core.CHECKSUM``), so a load
verifies the same way whichever wrote it.
Chunks are exported ``[export] parallel_jobs`` at a time; each is announced as soon as
it is complete, so its COPY can start while later chunks are still being written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from .. import config, faults
from ..model.chunk import Chunk
from ..model.plan import Plan
from ..verification.stats import Stats


class Engine(Protocol):
    """What an engine module offers: the export of one chunk."""

    def export_chunk(self, plan: Plan, index: int, folder: Path, binary: bool = False) -> Stats:
        """Write chunk ``index`` of ``plan`` as part files in ``folder`` (which must not exist): CSV, or
        PostgreSQL's binary COPY format (``binary``); return the chunk's source statistics."""

    def tracking_url(self) -> str | None:
        """Where an export can be watched beyond the task's progress (Spark's UI), if anywhere."""


def engine(plan: Plan) -> Engine:
    """The engine that exports ``plan``: the configured one - but pyarrow for an increment (append, merge) below
    ``[export] spark_min_rows``, which a JVM would take longer to start than to export."""
    settings = config.export()
    if settings.engine == "arrow" or (plan.incremental and plan.total_rows < settings.spark_min_rows):
        from . import arrow

        return arrow
    from . import spark

    return spark


def binary_chunks(plan: Plan) -> bool:
    """Whether the load's chunks are written in PostgreSQL's binary COPY format (``[export] chunk_format``): not
    with a bad-row budget, whose COPY finds the rows it refuses by their CSV line (``postgres.rejected``)."""
    return config.export().chunk_format == "binary" and not plan.quarantine


def export_chunks(plan: Plan, out: Path, on_chunk: Callable[[int, Stats], None]) -> list[Stats]:
    """Write every chunk of ``plan`` into ``out/chunk-NNNNN/``, calling ``on_chunk(index, stats)``
    (one call at a time) as each is complete; return every chunk's source statistics."""
    export_chunk = engine(plan).export_chunk
    binary = binary_chunks(plan)
    stats: list[Stats | None] = [None for _ in plan.chunks]
    lock = threading.Lock()

    def write(index: int) -> None:
        stats[index] = export_chunk(plan, index, out / Chunk(plan.load_id, index).dirname, binary)
        with lock:
            on_chunk(index, stats[index])
        faults.point("export.chunk")

    with ThreadPoolExecutor(max_workers=max(1, config.export().parallel_jobs)) as pool:
        futures = [pool.submit(write, i) for i in range(len(plan.chunks))]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # a failed load stops at once rather than exporting the rest
            raise
    return stats
