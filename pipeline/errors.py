"""The project's own exception types, and the log filter that turns them into one sentence.

Expected failures (bad input, unreachable database, failed verification) raise a
``PipelineError``. Luigi logs every task failure with a traceback; the filter installed
by :func:`install_log_filter` rewrites those records for ``PipelineError`` into a single
line, so the user reads one sentence and the exit code says the rest.
"""

from __future__ import annotations

import errno
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
_TRACEBACK_OS_ERROR = re.compile(r"^(?:PermissionError|NotADirectoryError|OSError|FileExistsError): "
                                 r"\[Errno (\d+)\] ([^:]*)(?:: '(.*)')?$")
# Failures of the machine rather than the code: say which path, not where in the code.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def _os_sentence(number: int, reason: str, path: str | None) -> str:
    advice = "; free some space and run again" if number in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"cannot write {path!r}: {reason}{advice}" if path else f"{reason}{advice}"


def explain(exc: BaseException | None) -> str | None:
    """One sentence for an expected failure anywhere in ``exc``'s chain, or None for a bug."""
    while exc is not None:
        if isinstance(exc, PipelineError):
            return str(exc)
        if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
            return _os_sentence(exc.errno, exc.strerror, exc.filename)
        exc = exc.__cause__ or exc.__context__
    return None


def _pipeline_error(record: logging.LogRecord) -> str | None:
    """The one-sentence explanation, if the record reports an expected failure."""
    sentence = explain(record.exc_info[1] if record.exc_info else sys.exc_info()[1])
    if sentence is not None:
        return sentence
    # Luigi logs failures of complete() and requires() with the traceback already formatted.
    lines = str(record.msg).strip().splitlines()
    if len(lines) < 2:
        return None
    match = _TRACEBACK_LAST_LINE.match(lines[-1])
    if match and issubclass(getattr(sys.modules[__name__], match.group(1), object), PipelineError):
        return match.group(2)
    match = _TRACEBACK_OS_ERROR.match(lines[-1])
    if match and int(match.group(1)) in _ENVIRONMENT_ERRNOS:
        return _os_sentence(int(match.group(1)), match.group(2), match.group(3))
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
