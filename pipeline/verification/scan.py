"""The PostgreSQL side of verification: one scan of the loaded rows giving the same ``Stats`` the
export observed in the source (see ``stats``, ``rowhash``)."""

from __future__ import annotations

from psycopg2 import sql

from ..errors import VerificationError
from ..types.mapping import Column, Kind, csv_order
from .rowhash import Checksum, HashKind, hash_kind
from .stats import Stats

SESSION_SETTINGS = "SET LOCAL DateStyle = ISO; SET LOCAL TimeZone = 'UTC'; SET LOCAL bytea_output = hex"

# How PostgreSQL recomputes the engines' row hash of a line's head.
HEAD_HASHES = {
    Checksum.MD5: "('x' || substr(md5({}), 1, 15))::bit(60)::bigint",
    Checksum.HASHTEXT: 'hashtextextended({} COLLATE "C", 0)',
}

# The "typed" row hash: per column i, PostgreSQL's own hash of the value's binary form, seeded with i + 1,
# NULL as 0; XORed across the row.
TYPED_HASHES = {
    HashKind.BOOL: "hashint4extended({c}::int, {seed})",
    HashKind.INT4: "hashint4extended({c}, {seed})",
    HashKind.INT8: "hashint8extended({c}, {seed})",
    HashKind.FLOAT: "hashfloat8extended({c}::float8, {seed})",
    HashKind.TEXT: 'hashtextextended({c} COLLATE "C", {seed})',
    HashKind.DATE: "hashint4extended({c} - date '2000-01-01', {seed})",
    HashKind.TIMESTAMP: "timestamp_hash_extended({c}, {seed})",
    HashKind.TIMESTAMPTZ: "timestamp_hash_extended({c}::timestamp, {seed})",  # the UTC wall-clock time
    HashKind.TIME: "time_hash_extended({c}, {seed})",
    HashKind.FIELD: 'hashtextextended({field} COLLATE "C", {seed})',
}


def pg_field(column: Column) -> sql.Composed:
    """SQL giving the CSV field the export wrote for a non-float value."""
    ident = sql.Identifier(column.name)
    if column.kind in (Kind.TEXT, Kind.JSON):  # quoted; a jsonb value as jsonb prints it, which is what was written
        return sql.SQL("""CASE WHEN {c} IS NULL THEN '' ELSE '"' || replace({c}::text, '"', '""') || '"' END""").format(
            c=ident)
    return sql.SQL("coalesce({}::text, '')").format(ident)


def _typed_row_hash(columns: list[Column]) -> sql.Composed:
    parts = [sql.SQL("coalesce({}, 0)").format(sql.SQL(TYPED_HASHES[hash_kind(c)]).format(
        c=sql.Identifier(c.name), seed=sql.Literal(i + 1), field=pg_field(c))) for i, c in enumerate(columns)]
    return sql.SQL(" # ").join(parts)


def stats_query(table: sql.Composable, columns: list[Column], checksum: Checksum = Checksum.MD5) -> sql.Composed:
    """One scan computing the statistics over a loaded table, in ``Stats.from_values`` order."""
    if checksum == Checksum.TYPED:
        row = _typed_row_hash(columns)
    else:
        head = [pg_field(columns[i]) for i in csv_order(columns) if not columns[i].is_float]
        line = sql.SQL("concat_ws(',', {})").format(sql.SQL(", ").join(head)) if head else sql.SQL("''")
        row = sql.SQL(HEAD_HASHES[checksum]).format(line)
    items = [sql.SQL("count(*)"), sql.SQL("coalesce(sum({}), 0)").format(row)]
    for c in columns:
        ident = sql.Identifier(c.name)
        items.append(sql.SQL("count(*) - count({})").format(ident))
        if c.is_float:
            # min/max as float8: a real printed as text would come back as a different double
            items += [sql.SQL("count(*) FILTER (WHERE {} = 'NaN')").format(ident),
                      sql.SQL("min({})::float8").format(ident), sql.SQL("max({})::float8").format(ident),
                      sql.SQL("coalesce(sum(hashfloat8extended({}::float8, 0)), 0)").format(ident)]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def table_stats(cur, table: sql.Composable, columns: list[Column], checksum: Checksum = Checksum.MD5) -> Stats:
    cur.execute(SESSION_SETTINGS)
    if checksum != Checksum.MD5 or any(c.is_float for c in columns):
        check_server_hash(cur)
    cur.execute(stats_query(table, columns, checksum))
    return Stats.from_values(columns, cur.fetchone())


def column_checksums(cur, table: sql.Composable, columns: list[Column]) -> dict[int, int]:
    """Per non-float column i: the sum of ``hashtextextended`` of its CSV field over the loaded rows."""
    cur.execute(SESSION_SETTINGS)
    check_server_hash(cur)
    indexes = [i for i, c in enumerate(columns) if not c.is_float]
    sums = [sql.SQL("coalesce(sum({}), 0)").format(sql.SQL(HEAD_HASHES[Checksum.HASHTEXT]).format(
        pg_field(columns[i]))) for i in indexes]
    cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(sums), table))
    return {i: int(v) for i, v in zip(indexes, cur.fetchone(), strict=True)}


def check_server_hash(cur) -> None:
    """The server computes ``hashtextextended`` as ``pghash`` does (a big-endian server would not)."""
    import pyarrow as pa

    from .pghash import float_hashes, hash_extended

    probe, number = "parquet-pg-pipeline, \"checksum\" probe: é😀", -1 / 3
    cur.execute('SELECT hashtextextended(%s COLLATE "C", 0), hashfloat8extended(%s, 0)', (probe, number))
    if cur.fetchone() != (int(hash_extended(pa.array([probe]))[0]), float_hashes(pa.array([number]))[0].as_py()):
        raise VerificationError("this PostgreSQL server hashes values differently from the pipeline's checksums, "
                                "so the load cannot be verified; a table without float columns can be loaded "
                                "with --export-engine spark")
