"""The indexes ``config/`` declares for a table (``primary_key``, ``indexes``), made on every table published where
it lacks them - on the staging table before a replace's swap, on the table in an increment's publish - and the
lookup of a table's indexes by their columns, which a merge's unique key uses too."""

from __future__ import annotations

from typing import NamedTuple

import psycopg2.errors
from psycopg2 import sql

from ..errors import SourceError


class Index(NamedTuple):
    primary: bool
    unique: bool
    columns: tuple[str, ...]  # in the index's order


def indexes_of(cur, table: sql.Composable) -> list[Index]:
    """The table's plain indexes: on columns (no expression), whole (no predicate)."""
    cur.execute("""SELECT i.indisprimary, i.indisunique,
                          array(SELECT a.attname::text FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY
                                    AS k(attnum, n)
                                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
                   FROM pg_index i WHERE i.indrelid = to_regclass(%s) AND i.indpred IS NULL AND i.indexprs IS NULL""",
                (table.as_string(cur),))
    return [Index(primary, unique, tuple(columns)) for primary, unique, columns in cur.fetchall()]


def declare(cur, table: sql.Composable, shown: str, primary_key: tuple[str, ...],
            indexes: tuple[tuple[str, ...], ...]) -> list[str]:
    """Make the declared primary key and indexes on ``table`` (``shown``: its name for messages) where it has no
    index on those columns yet; what it made, in words."""
    have = indexes_of(cur, table)
    made = []
    if primary_key:
        primary = next((i for i in have if i.primary), None)
        if primary and primary.columns != primary_key:
            raise SourceError(f"{shown} has the primary key ({', '.join(primary.columns)}), but config/ declares "
                              f"({', '.join(primary_key)}); change one of them; nothing was published")
        if not primary:
            names = sql.SQL(", ").join(map(sql.Identifier, primary_key))
            try:
                cur.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(table, names))
            except (psycopg2.errors.UniqueViolation, psycopg2.errors.NotNullViolation) as exc:
                why = "NULLs" if isinstance(exc, psycopg2.errors.NotNullViolation) else "repeated values"
                raise SourceError(f"the rows for {shown} have {why} in ({', '.join(primary_key)}), which config/ "
                                  f"declares as its primary key; nothing was published") from exc
            except psycopg2.errors.UndefinedColumn as exc:
                raise SourceError(f"config/ declares the primary key ({', '.join(primary_key)}) for {shown}, but it "
                                  f"has no column {_missing(exc)}; nothing was published") from exc
            made.append(f"primary key ({', '.join(primary_key)})")
            have.append(Index(True, True, primary_key))
    for columns in indexes:
        if any(i.columns == columns for i in have):
            continue
        try:
            cur.execute(sql.SQL("CREATE INDEX ON {} ({})").format(table, sql.SQL(", ").join(map(sql.Identifier,
                                                                                                 columns))))
        except psycopg2.errors.UndefinedColumn as exc:
            raise SourceError(f"config/ declares an index on ({', '.join(columns)}) for {shown}, but it has no "
                              f"column {_missing(exc)}; nothing was published") from exc
        made.append(f"index ({', '.join(columns)})")
        have.append(Index(False, False, columns))
    return made


def _missing(exc: psycopg2.Error) -> str:
    """The column PostgreSQL says does not exist, quoted as it says it."""
    message = (exc.diag.message_primary or "").split('"')
    return repr(message[1]) if len(message) > 2 else "among them"
