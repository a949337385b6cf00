"""Keep what users built on a table across the drop-and-rename of a replace (``publish``), in its one
transaction: ``capture`` the old table's objects, ``restore`` its indexes and constraints on the staging
table (temporary names), ``drop_dependents``, swap, ``after_swap`` (names, comments, grants, views).

Kept: indexes, primary key/unique/check/exclusion constraints, comments, table and column grants, and the
(materialized) views on the table, directly or transitively, with their options, owners, grants, comments,
indexes. Not kept: triggers, policies, statistics, foreign keys, the owner, grantors (the current user grants).
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

from ..errors import KeepError
from . import reflect
from .client import is_transient

_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
_KIND = {"v": "VIEW", "m": "MATERIALIZED VIEW"}


# An index or constraint of the target. ddl: for an index, pg_get_indexdef from
# "USING" on; for a constraint, pg_get_constraintdef. columns: all it mentions.
_Obj = namedtuple("_Obj", "is_index name ddl unique columns comment")
# A dependent view, kind 'v' or 'm'. options: reloptions ("key=value");
# definition: pg_get_viewdef, schema-qualified; indexes: pg_get_indexdef.
_View = namedtuple("_View", "schema name kind owner options definition comment column_comments grants indexes")


@dataclass
class Kept:
    target: tuple  # (schema, name)
    comment: str | None
    column_comments: dict
    objects: list  # _Obj
    grants: list  # (column | None, privilege, grantee | None for PUBLIC, grantable)
    views: list  # _View, in creation order
    renames: list = field(default_factory=list)  # (_Obj, temporary name), by restore()


def _rows(cur, query, **params):
    cur.execute(query, params)
    return cur.fetchall()


def _oid(cur, rel):
    return _rows(cur, "SELECT to_regclass(%(r)s)::oid", r=sql.Identifier(*rel).as_string(cur))[0][0]


def _columns(cur, oid):
    return {r[0] for r in _rows(cur, "SELECT attname FROM pg_attribute WHERE attrelid = %(o)s"
                                     " AND attnum > 0 AND NOT attisdropped", o=oid)}


# Inspector reflects no privileges: read the ACLs. The owner's entry is implicit.
_GRANTS = """SELECT NULL::name, a.privilege_type, pg_get_userbyid(NULLIF(a.grantee, 0)), a.is_grantable
  FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %(o)s AND a.grantee <> c.relowner
UNION ALL SELECT t.attname, a.privilege_type, pg_get_userbyid(NULLIF(a.grantee, 0)), a.is_grantable
  FROM pg_attribute t, aclexplode(t.attacl) a WHERE t.attrelid = %(o)s AND NOT t.attisdropped"""

# Exact DDL from pg_get_indexdef/pg_get_constraintdef: Inspector.get_indexes()
# parts would need re-rendering, at risk of losing opclasses, collations,
# storage parameters, NULLS NOT DISTINCT. pg_depend lists every column an index
# mentions, expressions and predicate included (get_indexes only has text).
# "prefix" is what pg_get_indexdef writes before "USING" (the table is always
# schema-qualified); the rest does not name the table and is replayed as is.
_OBJECTS = """SELECT true, i.relname, pg_get_indexdef(x.indexrelid), x.indisunique,
       ARRAY(SELECT DISTINCT a.attname FROM pg_depend d JOIN pg_attribute a
             ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid),
       obj_description(x.indexrelid, 'pg_class'),
       format('CREATE %%sINDEX %%s ON %%s.%%s ', CASE WHEN x.indisunique THEN 'UNIQUE ' END,
              quote_ident(i.relname), quote_ident(n.nspname), quote_ident(t.relname))
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE x.indrelid = %(o)s AND x.indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %(o)s)
UNION ALL SELECT false, conname, pg_get_constraintdef(oid), false,
       ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = conrelid AND attnum = ANY (conkey)),
       obj_description(oid, 'pg_constraint'), NULL
  FROM pg_constraint WHERE conrelid = %(o)s AND contype IN ('p', 'u', 'c', 'x') AND coninhcount = 0"""

# Inspector cannot find dependents: follow the views' _RETURN rules in pg_depend,
# transitively. depth = longest path, so depth order creates a view after all
# the views it reads.
_VIEWS = """WITH RECURSIVE dep(oid, depth) AS (SELECT %(o)s::oid, 0 UNION
  SELECT r.ev_class, dep.depth + 1 FROM dep
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = dep.oid
     AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> dep.oid)
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), coalesce(c.reloptions, '{}'),
       ARRAY(SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = c.oid ORDER BY indexrelid)
  FROM (SELECT oid, max(depth) AS depth FROM dep WHERE depth > 0 GROUP BY oid) v
  JOIN pg_class c ON c.oid = v.oid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('v', 'm') ORDER BY v.depth, c.oid"""


def _comments(insp, schema, name):
    """Table (or view) comment and column comments: Inspector reports them exactly."""
    return (insp.get_table_comment(name, schema=schema)["text"],
            {c["name"]: c["comment"] for c in insp.get_columns(name, schema=schema) if c.get("comment")})


def capture(cur, target) -> Kept | None:
    """Reflect what users built on ``target`` (schema, name); None if it does not exist."""
    with reflect.session(cur, inspect=True) as insp:
        oid = _oid(cur, target)
        if oid is None:
            return None
        objects = []
        for is_index, name, ddl, unique, columns, comment, prefix in _rows(cur, _OBJECTS, o=oid):
            if is_index and not ddl.startswith(prefix + "USING "):
                raise KeepError(f"index {name}: unexpected pg_get_indexdef output {ddl!r}")
            objects.append(_Obj(is_index, name, ddl[len(prefix or ""):], unique, columns, comment))
        views = [_View(schema, name, kind, owner, options,
                       insp.get_view_definition(name, schema=schema).rstrip().rstrip(";"),  # pg_get_viewdef(oid)
                       *_comments(insp, schema, name), _rows(cur, _GRANTS, o=v_oid), indexes)
                 for v_oid, schema, name, kind, owner, options, indexes in _rows(cur, _VIEWS, o=oid)]
        return Kept(tuple(target), *_comments(insp, *target), objects, _rows(cur, _GRANTS, o=oid), views)


def drop_dependents(cur, kept: Kept | None) -> None:
    """Drop the dependent views, dependents first, so that DROP TABLE succeeds."""
    for v in reversed(kept.views if kept else []):
        cur.execute(sql.SQL("DROP {} {}").format(sql.SQL(_KIND[v.kind]), sql.Identifier(v.schema, v.name)))


def restore(cur, kept: Kept | None, staging) -> list[str]:
    """Before the swap: build the kept indexes and constraints on ``staging`` under
    temporary names. Returns warnings for those mentioning columns it lacks."""
    warnings = []
    if kept is None:
        return warnings
    with reflect.session(cur):
        if (oid := _oid(cur, staging)) is None:
            raise KeepError(f"staging table {'.'.join(staging)} does not exist")
        have = _columns(cur, oid)
        for i, obj in enumerate(kept.objects):
            if lost := [c for c in obj.columns if c not in have]:
                warnings.append(f"{'index' if obj.is_index else 'constraint'} {obj.name} of {'.'.join(kept.target)}"
                                f" was not kept: the new table lacks column(s) {', '.join(lost)}.")
                continue
            tmp = f"k{i}_{staging[1]}"[:63]  # unique to this load; never an existing name
            if obj.is_index:
                q = sql.SQL("CREATE {}INDEX {} ON {} ").format(
                    sql.SQL("UNIQUE " if obj.unique else ""), sql.Identifier(tmp), sql.Identifier(*staging))
            else:
                q = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(*staging), sql.Identifier(tmp))
            cur.execute(q + sql.SQL(obj.ddl))
            kept.renames.append((obj, tmp))
    return warnings


def _decorate(cur, kind, rel, comment, column_comments, grants, have, warnings):
    """Re-apply comments and grants to ``rel``, skipping columns not in ``have``."""
    where = f"of {'.'.join(rel)} was not kept: the new table lacks that column."
    if comment is not None:
        cur.execute(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), sql.Identifier(*rel), sql.Literal(comment)))
    for col, text in column_comments.items():
        if col not in have:
            warnings.append(f"comment on column {col} {where}")
        else:
            cur.execute(sql.SQL("COMMENT ON COLUMN {} IS {}").format(sql.Identifier(*rel, col), sql.Literal(text)))
    for col, privilege, grantee, grantable in grants:
        if col is not None and col not in have:
            warnings.append(f"grant of {privilege} on column {col} to {grantee or 'PUBLIC'} {where}")
            continue
        if privilege not in _PRIVILEGES:  # it is spliced in as SQL: never trust it blindly
            raise KeepError(f"unexpected privilege {privilege!r} on {'.'.join(rel)}")
        cur.execute(sql.SQL("GRANT {}{} ON TABLE {} TO {}{}").format(
            sql.SQL(privilege), sql.SQL(" ({})").format(sql.Identifier(col)) if col else sql.SQL(""),
            sql.Identifier(*rel), sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
            sql.SQL(" WITH GRANT OPTION" if grantable else "")))


def after_swap(cur, kept: Kept | None) -> list[str]:
    """After the swap: restore original index/constraint names, comments and
    grants, and recreate the views. Returns warnings for skipped comments and
    grants; raises KeepError naming a view that no longer compiles."""
    if kept is None:
        return []
    warnings, (schema, name) = [], kept.target
    table = sql.Identifier(schema, name)
    with reflect.session(cur):
        for obj, tmp in kept.renames:
            if obj.is_index:
                cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(schema, tmp), sql.Identifier(obj.name)))
                what = sql.SQL("INDEX {}").format(sql.Identifier(schema, obj.name))
            else:  # renaming a primary key or unique constraint renames its index too
                cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    table, sql.Identifier(tmp), sql.Identifier(obj.name)))
                what = sql.SQL("CONSTRAINT {} ON {}").format(sql.Identifier(obj.name), table)
            if obj.comment is not None:
                cur.execute(sql.SQL("COMMENT ON {} IS {}").format(what, sql.Literal(obj.comment)))
        _decorate(cur, "TABLE", kept.target, kept.comment, kept.column_comments, kept.grants,
                  _columns(cur, _oid(cur, kept.target)), warnings)
        for v in kept.views:
            kind, view = sql.SQL(_KIND[v.kind]), sql.Identifier(v.schema, v.name)
            options = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(val))
                                         for k, val in (o.split("=", 1) for o in v.options))
            try:
                cur.execute(sql.SQL("CREATE {} {}{} AS ").format(
                    kind, view, sql.SQL(" WITH ({})").format(options) if v.options else sql.SQL(""))
                    + sql.SQL(v.definition))
            except psycopg2.Error as e:
                if is_transient(e):  # a lost connection: the publish is retried as a whole
                    raise
                raise KeepError(f"view {v.schema}.{v.name} cannot be recreated on the new {schema}.{name}: "
                                f"{e.diag.message_primary}") from e
            cur.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(kind, view, sql.Identifier(v.owner)))
            for ddl in v.indexes:  # the old materialized view is gone, so its names are free
                cur.execute(sql.SQL(ddl))
            _decorate(cur, _KIND[v.kind], (v.schema, v.name), v.comment, v.column_comments, v.grants,
                      _columns(cur, _oid(cur, (v.schema, v.name))), warnings)
    return warnings
