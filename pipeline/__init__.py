"""Parquet -> PostgreSQL, exactly once: a Luigi task graph (``luigi --module pipeline IngestAll``).

Importing the package defines the tasks and configures nothing; logging is set up when a task is created
or ``python -m pipeline`` starts (``logs``).
"""

from .ingest import ForgetRemovedFiles, IngestAll, IngestTable
from .tasks import CopyChunkToPostgres, ExportCsvChunks, PublishTable, SparkReadParquet, VerifyRowCount

__all__ = ["SparkReadParquet", "ExportCsvChunks", "CopyChunkToPostgres", "VerifyRowCount", "PublishTable",
           "IngestTable", "IngestAll", "ForgetRemovedFiles"]
