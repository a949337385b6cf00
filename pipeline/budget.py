"""The bad-row budget during a load (``max_bad_rows``, ``max_bad_fraction``): a load that finds more bad rows than
its budget fails, its bad rows kept in the quarantine for inspection; before a publish, the rows the target's
constraints refuse are quarantined too. Finding bad rows in the source is ``badrows``; the quarantine table is
``postgres.quarantine``; the rows COPY refuses are ``postgres.rejected``; the command that shows them is
``python -m pipeline quarantine`` (``cli``)."""

from __future__ import annotations

from pathlib import Path

from . import badrows, faults
from .errors import SourceError
from .model.plan import Plan
from .postgres import client, quarantine
from .postgres.schema import ensure_schema


def over_budget(plan: Plan, found: int, chunk_folders: list[Path] = (), complete: bool = True) -> None:
    """Fail a load that found more bad rows than its budget: with those its export set aside in ``chunk_folders``
    put in the quarantine, for inspection until the table's next publish."""
    def keep(conn) -> list[str]:
        ensure_schema(conn)
        with client.transaction(conn, f"quarantining the bad rows of {plan.table}") as cur:
            for folder in chunk_folders:
                quarantine.insert(cur, plan, badrows.read(folder), quarantine.EXPORT)
            return quarantine.first_rows(cur, plan.load_id)

    shown = client.with_retries(keep, f"quarantining the bad rows of {plan.table}")
    raise SourceError(f"{plan.table} cannot be loaded: {'at least ' if not complete else ''}{found:,} of its "
                      f"{plan.total_rows:,} rows cannot be stored in PostgreSQL, more than its budget of "
                      f"{plan.budget:,} (max_bad_rows, max_bad_fraction); the first: {'; '.join(shown)}. They are "
                      f"kept for inspection until its next load (python -m pipeline quarantine {plan.table}); "
                      "nothing was published")


def check_constraints(plan: Plan, replace: bool) -> int:
    """Before the publish of a load with a budget: quarantine the verified rows the target's constraints refuse
    (``postgres.quarantine.reject``; ``replace``: the staging table becomes the target), and fail if the load has
    now more bad rows than its budget; how many it has."""
    if not plan.quarantine:
        return 0
    found = client.with_retries(lambda conn: quarantine.reject(conn, plan, replace),
                                f"checking the rows of {plan.table}")
    faults.point("publish.after_reject")
    if found > plan.budget:
        over_budget(plan, found)
    if found and found == plan.total_rows:  # a budget is for some rows, not for a table left empty
        raise SourceError(f"{plan.table} cannot be loaded: every one of its {found:,} rows is bad (python -m "
                          f"pipeline quarantine {plan.table}); nothing was published")
    return found
