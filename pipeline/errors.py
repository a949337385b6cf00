"""The project's own exception types, and ``explain``: the one sentence for an expected failure.

Expected failures (bad input, unreachable database, failed verification) raise a
``PipelineError``; failures of the machine (a full disk, a permission) are ``OSError``s
with a path. Anything else is a bug and keeps its traceback (see ``logs``).
"""

from __future__ import annotations

import errno


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


class KeepError(DatabaseError):
    """What users built on a table cannot be recreated on its replacement; the publish rolls back."""


class ChunkAlreadyLoaded(DatabaseError):
    """Another process committed this chunk first; the ledger kept it exactly once."""


class ExportError(PipelineError):
    """Writing the CSV chunks failed."""


class VerificationError(PipelineError):
    """The loaded rows do not match the source; nothing is published."""


class StateReset(PipelineError):
    """A load's state no longer matched the database and was reset; running again loads it afresh."""


def first_line(error: BaseException | str, limit: int | None = 500) -> str:
    """The first line of an error's text, trimmed to ``limit`` characters (None: whole); an exception without text
    by its class name. Drivers and readers put a stack or a query under the first line."""
    text = str(error).strip().split("\n", 1)[0][:limit]
    return text or (type(error).__name__ if isinstance(error, BaseException) else "")


# Failures of the machine rather than the code: say which path, not where in the code.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def os_sentence(number: int, reason: str, path: str | None) -> str:
    advice = "; free some space and run again" if number in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"cannot write {path!r}: {reason}{advice}" if path else f"{reason}{advice}"


def explain(exc: BaseException | None) -> str | None:
    """One sentence for an expected failure anywhere in ``exc``'s chain, or None for a bug."""
    while exc is not None:
        if isinstance(exc, PipelineError):
            return str(exc)
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return os_sentence(exc.errno, exc.strerror, exc.filename)
        exc = exc.__cause__ or exc.__context__
    return None


