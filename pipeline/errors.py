"""The project's own exception types, and the log filter that turns them into one sentence.

Expected failures (bad input, unreachable database, failed verification) raise a
``PipelineError``. Luigi logs every task failure with a traceback; the filter installed
by :func:`install_log_filter` rewrites those records for ``PipelineError`` into a single
line, so the user reads one sentence and the exit code says the rest.
"""

from __future__ import annotations

import logging
import re
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


_WILL_NOT_RUN = re.compile(r"Will not run (.*) or any dependencies due to error in \w+\(\) method")
_TRACEBACK_LAST_LINE = re.compile(r"^pipeline\.errors\.(\w+): (.*)$")


def _pipeline_error(record: logging.LogRecord) -> str | None:
    """The one-sentence explanation, if the record reports a ``PipelineError``."""
    exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
    while exc is not None and not isinstance(exc, PipelineError):
        exc = exc.__cause__ or exc.__context__
    if exc is not None:
        return str(exc)
    # Luigi logs failures of complete() and requires() with the traceback already formatted.
    lines = str(record.msg).strip().splitlines()
    match = _TRACEBACK_LAST_LINE.match(lines[-1]) if len(lines) > 1 else None
    if match and issubclass(getattr(sys.modules[__name__], match.group(1), object), PipelineError):
        return match.group(2)
    return None


class OneLineErrors(logging.Filter):
    """Replace Luigi's traceback for an expected failure with one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = _pipeline_error(record)
        if error is None:
            return True
        headline = record.getMessage().split("\n", 1)[0].rstrip(":")
        headline = _WILL_NOT_RUN.sub(r"Cannot run \1", headline)
        record.msg, record.args = "%s: %s", (" ".join(headline.split()), error)
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        record.exc_info = record.exc_text = None
        return True


def install_log_filter() -> None:
    """One-line errors in Luigi's log, and the pipeline's own progress lines beside Luigi's."""
    luigi_logger = logging.getLogger("luigi-interface")
    if not any(isinstance(f, OneLineErrors) for f in luigi_logger.filters):
        luigi_logger.addFilter(OneLineErrors())
    own = logging.getLogger("pipeline")
    if not own.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        own.addHandler(handler)
        own.setLevel(logging.INFO)
        own.propagate = False
