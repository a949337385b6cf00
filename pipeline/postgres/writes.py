"""What the write modes have in common: the entry points each offers (``Writer``) and the value a publish returns
(``Published``), which the task renders as its sentence. ``postgres.modes.writer`` finds a mode's writer."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.plan import Plan


@dataclass(frozen=True)
class Published:
    """What a publish did. ``loaded``: the verified rows it took (the bad rows quarantined left out)."""

    mode: str
    rows: int  # the table holds now
    loaded: int
    files: int
    quarantined: int = 0  # bad rows of the load, in the quarantine
    duplicates: int = 0  # merge with dedup = "last": earlier rows of a key left out
    replaced: int = 0  # merge: the table's rows replaced by a row with their key
    deleted: int = 0  # the earlier rows of the rewritten files, deleted first
    rewritten: int = 0  # files loaded again
    made: tuple[str, ...] = ()  # the declared primary key and indexes it made, in words
    needed: tuple[str, ...] = ()  # the indexes the mode itself made, in words
    already: bool = False  # another process had published the load: this one did nothing


class Writer:
    """One write mode: how a verified load's staging table becomes the target table or goes into it."""

    mode = ""
    # Whether the published table is the staging table itself (a replace's swap), which keeps only the target's
    # own validated checks; else the rows go into the target, which checks them all (``quarantine.reject``).
    rebuilds_table = False

    def check(self, conn, plan: Plan) -> None:
        """Before any export: fail when the load could not be published (rights, columns)."""
        raise NotImplementedError

    def publish(self, conn, plan: Plan) -> Published:
        """Publish the verified load and record it, in one transaction."""
        raise NotImplementedError
