"""Named crash points, for the tests that prove a kill -9 at any instant loses nothing.

Set ``PIPELINE_KILL_AT=<point>[:<n>]`` and the process group is killed with SIGKILL the
n-th time (default: first) the process reaches ``<point>``. Unset, a point costs one dict
lookup. Points: export.chunk, copy.before_commit, copy.after_commit, copy.done,
verify.done, publish.after_reject (a load with a bad-row budget), publish.after_commit.
"""

from __future__ import annotations

import os
import signal
import threading

_hits: dict[str, int] = {}
_lock = threading.Lock()


def point(name: str) -> None:
    target = os.environ.get("PIPELINE_KILL_AT")
    if not target:
        return
    wanted, _, nth = target.partition(":")
    if wanted != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] >= int(nth or 1):
            os.killpg(os.getpgid(0), signal.SIGKILL)
