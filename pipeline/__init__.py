"""Parquet -> PostgreSQL, exactly once: a Luigi task graph (``luigi --module pipeline IngestAll``)."""

from .errors import install_log_filter
from .tasks import (
    CopyChunkToPostgres,
    ExportCsvChunks,
    IngestAll,
    IngestTable,
    PublishTable,
    SparkReadParquet,
    VerifyRowCount,
)

install_log_filter()

__all__ = ["SparkReadParquet", "ExportCsvChunks", "CopyChunkToPostgres", "VerifyRowCount", "PublishTable",
           "IngestTable", "IngestAll"]
