"""The ``merge`` mode: an increment published as ``append`` publishes one (``Append``), but merged on its key: the
staged rows replace the table's rows with the same key and add the others (``INSERT … ON CONFLICT (key) DO UPDATE``,
on a unique index of the key, made if missing), and the merge is verified before it commits - every staged row
went in, the table gained exactly the keys it did not hold, and it holds each staged row under its key.
A key twice among the staged rows is refused, or with ``dedup = "last"`` the row of the latest file (by name,
then row order) is kept and the others deleted first, by the file and row columns the load added."""

from __future__ import annotations

import psycopg2.errors
from psycopg2 import sql

from ..errors import SourceError, VerificationError
from ..model.naming import TableName
from ..model.plan import Plan
from ..types.mapping import MAX_IDENTIFIER
from ..verification.scan import SESSION_SETTINGS, pg_field, table_stats
from .append import Append
from .indexes import indexes_of


class DuplicateKey(SourceError):
    """A key occurs more than once among the increment's rows; ``fields`` are its CSV fields, as exported."""

    def __init__(self, message: str, fields: list[str]):
        super().__init__(message)
        self.fields = fields


def _names(plan: Plan) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, plan.key))


def check_keys(cur, plan: Plan, staged: sql.Composable) -> int:
    """Every staged row has a key, and no key occurs twice - or, when the plan keeps the latest row of a key
    (``dedup``, by its file and row columns), the earlier rows are deleted; how many."""
    where = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in plan.key)
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(staged, where))
    nulls = cur.fetchone()[0]
    if nulls:
        raise SourceError(f"cannot merge into {plan.table}: {nulls:,} rows of the new files have a NULL in the key "
                          f"({', '.join(plan.key)}); nothing was published")
    if plan.dedup:
        return _keep_latest(cur, plan, staged)
    columns = {c.name: c for c in plan.columns}
    texts = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in plan.key)
    fields = sql.SQL(", ").join(pg_field(columns[k]) for k in plan.key)
    cur.execute(SESSION_SETTINGS)
    cur.execute(sql.SQL("SELECT count(*), {}, {} FROM {} GROUP BY {} HAVING count(*) > 1 ORDER BY 1 DESC LIMIT 1")
                .format(texts, fields, staged, _names(plan)))
    row = cur.fetchone()
    if row:
        n, values = row[0], row[1:]
        shown = ", ".join(values[:len(plan.key)])
        raise DuplicateKey(f"cannot merge into {plan.table}: key ({', '.join(plan.key)})=({shown}) occurs {n} times "
                           "in the new files", list(values[len(plan.key):]))
    return 0


def _keep_latest(cur, plan: Plan, staged: sql.Composable) -> int:
    """Delete the staged rows of a key but the one from the latest file (names compared as Python sorts them:
    by code point, as the "C" collation does in UTF-8), then the last row of that file."""
    latest = sql.SQL("ORDER BY {} COLLATE \"C\" DESC, {} DESC").format(
        sql.Identifier(plan.file_column), sql.Identifier(plan.row_column))
    cur.execute(sql.SQL("""DELETE FROM {staged} s USING (
                               SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY {key} {latest}) AS n
                                                 FROM {staged}) numbered WHERE n > 1) earlier
                           WHERE s.ctid = earlier.ctid""").format(staged=staged, key=_names(plan), latest=latest))
    return cur.rowcount


def ensure_unique(cur, target: TableName, key: list[str]) -> None:
    """A unique index on exactly the key's columns, which ``ON CONFLICT`` needs: the table's own, or one made."""
    if any(index.unique and sorted(index.columns) == sorted(key) for index in indexes_of(cur, target.identifier())):
        return
    name = f"{target.name[:MAX_IDENTIFIER - 10]}_merge_key"
    try:
        cur.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
            sql.Identifier(name), target.identifier(), sql.SQL(", ").join(map(sql.Identifier, key))))
    except psycopg2.errors.UniqueViolation as exc:
        raise SourceError(f"cannot merge into {target}: its rows are not unique on ({', '.join(key)}), so they cannot "
                          "be merged on it; nothing was published") from exc


def upsert(cur, plan: Plan, target: TableName, staged: sql.Composable, rows: int) -> int:
    """Merge the ``rows`` staged rows into ``target`` (which has a unique index on the key); how many of its rows
    they replaced."""
    on = sql.SQL(" AND ").join(sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in plan.key)
    cur.execute(sql.SQL("SELECT count(*) FROM {} s WHERE EXISTS (SELECT 1 FROM {} t WHERE {})").format(
        staged, target.identifier(), on))
    replaced = cur.fetchone()[0]
    columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in plan.table_columns)
    others = [sql.Identifier(c.name) for c in plan.table_columns if c.name not in plan.key]
    action = (sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(c) for c in others)
              if others else sql.SQL("DO NOTHING"))
    # xmax is 0 on a row version a statement inserted, not on one it updated
    cur.execute(sql.SQL("""WITH merged AS (INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) {}
                                           RETURNING xmax = 0 AS inserted)
                           SELECT count(*) FILTER (WHERE inserted), count(*) FROM merged""").format(
        target.identifier(), columns, columns, staged, _names(plan), action))
    added, merged = cur.fetchone()
    expected = rows if others else rows - replaced
    if merged != expected or added != rows - replaced:
        raise VerificationError(f"merging into {plan.table} wrote {merged:,} rows ({added:,} new keys) where the "
                                f"increment holds {rows:,} rows with {rows - replaced:,} new keys; nothing was "
                                "published")
    under_keys = sql.SQL("(SELECT t.* FROM {} t JOIN {} s USING ({})) AS merged").format(
        target.identifier(), staged, _names(plan))
    if table_stats(cur, under_keys, plan.table_columns) != table_stats(cur, staged, plan.table_columns):
        raise VerificationError(f"after merging, {plan.table} does not hold every staged row under its key; nothing "
                                "was published")
    return replaced


class Merge(Append):
    """``merge``: the verified increment's rows are merged into the target on the key."""

    mode = "merge"

    def left_out(self, cur, plan: Plan, staged: sql.Composable) -> int:
        return check_keys(cur, plan, staged)

    def prepare(self, cur, plan: Plan, target: TableName) -> list[str]:
        """The unique index on the key that ``ON CONFLICT`` needs (a merge never deletes a file's rows)."""
        ensure_unique(cur, target, plan.key)
        return []

    def write_rows(self, cur, plan: Plan, target: TableName, staged: sql.Composable, rows: int) -> int:
        return upsert(cur, plan, target, staged, rows)
