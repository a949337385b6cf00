"""The write modes by name: ``replace`` (``replace.Replace``), ``append`` (``append.Append``) and ``merge``
(``merge.Merge``), each a ``writes.Writer``."""

from __future__ import annotations

from .append import Append
from .merge import Merge
from .replace import Replace
from .writes import Writer

_WRITERS: dict[str, Writer] = {writer.mode: writer for writer in (Replace(), Append(), Merge())}


def writer(mode: str) -> Writer:
    """The writer of mode ``mode`` (one of ``model.options.MODES``)."""
    return _WRITERS[mode]
