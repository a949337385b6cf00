"""The indexes ``config/`` declares for a table (``primary_key``, ``indexes``), made on every table published where
it lacks them - on the staging table before a replace's swap, then named after the table; on the table in an
increment's publish - the lookup of a table's indexes by their columns, which a merge's unique key uses too, and
the index an append's ``source_file_column`` needs to find a file's rows."""

from __future__ import annotations

from typing import NamedTuple

import psycopg2.errors
from psycopg2 import sql

from ..errors import DatabaseError, SourceError
from ..model.naming import TableName
from ..model.options import LoadOptions
from ..types.mapping import MAX_IDENTIFIER
from .client import exists


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


def declare(cur, table: sql.Composable, shown: str, options: LoadOptions) -> list[str]:
    """Make the primary key and indexes the options declare on ``table`` (``shown``: its name for messages) where
    it has no index on those columns yet; what it made, in words."""
    primary_key, indexes = options.primary_key, options.indexes
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


def ensure_lookup(cur, table: TableName, column: str) -> bool:
    """An index whose first column is ``column``, made unless the table has one (whether it made it): a delete of a
    file's rows by its ``source_file_column`` then reads those rows only, not the whole table."""
    if any(index.columns[:1] == (column,) for index in indexes_of(cur, table.identifier())):
        return False
    cur.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
        sql.Identifier(free_name(cur, table.schema, table.name, f"_{column}_idx")), table.identifier(),
        sql.Identifier(column)))
    return True


def free_name(cur, schema: str, table: str, suffix: str) -> str:
    """A name for an index of ``table`` in ``schema`` as PostgreSQL would choose it: the table's name, shortened
    to fit 63 bytes, then ``suffix``, with a number added while another relation has the name."""
    for n in range(1000):
        tail = suffix if n == 0 else f"{suffix}{n}"
        head = table.encode()[:MAX_IDENTIFIER - len(tail.encode())].decode(errors="ignore")
        if not exists(cur, sql.Identifier(schema, head + tail)):
            return head + tail
    raise DatabaseError(f"no free name for an index of {schema}.{table} ending in {suffix!r}")


def rename_made(cur, target: TableName, staging_name: str) -> None:
    """After a replace's swap: give the indexes made on the staging table (``declare``), which PostgreSQL named
    after it, the names it would have chosen on the target - ``<table>_pkey``, ``<table>_<columns>_idx``."""
    cur.execute("""SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE i.indrelid = to_regclass(%s) AND left(c.relname, %s) = %s ORDER BY c.relname""",
                (target.identifier().as_string(cur), len(staging_name), staging_name))
    for (name,) in cur.fetchall():  # renaming the index of a constraint renames the constraint too
        cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(target.schema, name), sql.Identifier(
            free_name(cur, target.schema, target.name, name[len(staging_name):]))))


def _missing(exc: psycopg2.Error) -> str:
    """The column PostgreSQL says does not exist, quoted as it says it."""
    message = (exc.diag.message_primary or "").split('"')
    return repr(message[1]) if len(message) > 2 else "among them"
