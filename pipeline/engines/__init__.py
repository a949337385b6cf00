"""The CSV chunk export: ``[export] engine`` picks who writes the chunks, Spark or pyarrow.

Both engines write the same files (one CSV line per row, PostgreSQL's text forms) and
observe the same source statistics, so a load verifies the same way whichever wrote it.
Chunks are exported ``[export] parallel_jobs`` at a time; each is announced as soon as
it is complete, so its COPY can start while later chunks are still being written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import faults, settings
from .chunks import Chunk
from .source import Plan


def engine():
    """The module of the configured engine: ``export_chunk(plan, index, folder) -> stats`` and ``CHECKSUM``,
    the row hash its statistics use."""
    if settings.export().engine == "arrow":
        from . import arrow_export

        return arrow_export
    from . import spark_export

    return spark_export


def export_chunks(plan: Plan, out: Path, on_chunk: Callable[[int, dict], None]) -> list[dict]:
    """Write every chunk of ``plan`` into ``out/chunk-NNNNN/``, calling ``on_chunk(index, stats)``
    (one call at a time) as each is complete; return every chunk's source statistics."""
    export_chunk = engine().export_chunk
    stats: list[dict] = [{} for _ in plan.chunks]
    lock = threading.Lock()

    def write(index: int) -> None:
        stats[index] = export_chunk(plan, index, out / Chunk(plan.load_id, index).dirname)
        with lock:
            on_chunk(index, stats[index])
        faults.point("export.chunk")

    with ThreadPoolExecutor(max_workers=max(1, settings.export().parallel_jobs)) as pool:
        futures = [pool.submit(write, i) for i in range(len(plan.chunks))]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # a failed load stops at once rather than exporting the rest
            raise
    return stats
