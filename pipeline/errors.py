"""The project's own exception types, and the log filter that turns them into one sentence.

Expected failures (bad input, unreachable database, failed verification) raise a
``PipelineError``. Luigi logs every task failure with a traceback; the filter installed
by :func:`install_log_filter` rewrites those records for ``PipelineError`` into a single
line, so the user reads one sentence and the exit code says the rest.
"""

from __future__ import annotations

import logging
import sys


class PipelineError(Exception):
    """An expected failure, explained to the user in one sentence."""


class ConfigError(PipelineError):
    """The configuration (luigi.cfg, config/, environment) is malformed."""


class SourceError(PipelineError):
    """The Parquet source folder cannot be loaded as it is."""


class UnsupportedTypeError(SourceError):
    """A Parquet column has a type with no exact PostgreSQL equivalent."""


class DatabaseError(PipelineError):
    """PostgreSQL refused or failed an operation."""


class TransientDatabaseError(DatabaseError):
    """A database failure that may pass on retry (connection lost, server restarting)."""


class ChunkAlreadyLoaded(DatabaseError):
    """Another process committed this chunk first; the ledger kept it exactly once."""


class ExportError(PipelineError):
    """Writing the CSV chunks failed."""


class VerificationError(PipelineError):
    """The loaded rows do not match the source; nothing is published."""


def _pipeline_error(record: logging.LogRecord) -> PipelineError | None:
    exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
    while exc is not None and not isinstance(exc, PipelineError):
        exc = exc.__cause__ or exc.__context__
    return exc


class OneLineErrors(logging.Filter):
    """Replace Luigi's traceback for an expected failure with one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = _pipeline_error(record)
        if error is None:
            return True
        headline = str(record.msg).split("\n", 1)[0]
        if record.args:
            try:
                headline = headline % record.args
            except (TypeError, ValueError):
                pass
        headline = headline.rstrip(":").replace(" or any dependencies due to error in", " because of")
        record.msg = "%s: %s"
        record.args = (" ".join(headline.split()), error)
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        record.exc_info = None
        record.exc_text = None
        return True


def install_log_filter() -> None:
    logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())
