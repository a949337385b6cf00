"""Logging for a run: the pipeline's progress lines beside Luigi's, and Luigi's traceback for an expected
failure replaced by one sentence (the exit code says the rest).

Set up by ``setup()``, which the pipeline's tasks call when they are created and ``python -m pipeline``
calls on start; importing the package configures nothing.
"""

from __future__ import annotations

import logging
import re
import sys

from . import errors
from .errors import ENVIRONMENT_ERRNOS, explain, os_sentence

_WILL_NOT_RUN = re.compile(r"Will not run (.*) or any dependencies due to error in \w+\(\) method")
_TRACEBACK_LAST_LINE = re.compile(r"^pipeline\.errors\.(\w+): (.*)$")
_TRACEBACK_OS_ERROR = re.compile(r"^(?:PermissionError|NotADirectoryError|OSError|FileExistsError): "
                                 r"\[Errno (\d+)\] ([^:]*)(?:: '(.*)')?$")
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
    if match and issubclass(getattr(errors, match.group(1), object), errors.PipelineError):
        return match.group(2)
    match = _TRACEBACK_OS_ERROR.match(lines[-1])
    if match and int(match.group(1)) in ENVIRONMENT_ERRNOS:
        return os_sentence(int(match.group(1)), match.group(2), match.group(3))
    return None


class OneLineErrors(logging.Filter):
    """Replace Luigi's traceback for an expected failure with one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = _pipeline_error(record)
        if error is None:
            return True
        headline = errors.first_line(record.getMessage(), None).rstrip(":")
        headline = _WILL_NOT_RUN.sub(r"Cannot run \1", headline)
        record.msg, record.args = "%s: %s", (" ".join(headline.split()), error)
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        record.exc_info = record.exc_text = None
        return True


def setup() -> None:
    """One-line errors in Luigi's log, and the pipeline's own progress lines beside Luigi's (idempotent)."""
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
