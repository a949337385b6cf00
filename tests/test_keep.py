"""What a replace keeps of the old table (``postgres.keep``), against the real server: every index,
constraint, comment, grant and dependent view comes back on the new rows, what mentions a vanished column
is skipped with a warning, and a view that no longer compiles fails the publish with the old table intact."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import sql

from pipeline.errors import DatabaseError
from pipeline.postgres import keep

TARGET = ("sales", "Order Items")  # space + capital: exercises quoting everywhere
STAGING = ("pipeline", "load_42")
COLUMNS = {"id": "int", "code": "text", "qty": "int", "note": "text", "region": "text"}

SETUP = """
DROP SCHEMA IF EXISTS sales CASCADE; DROP SCHEMA IF EXISTS pipeline CASCADE;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'keep_reader') THEN CREATE ROLE keep_reader; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'keep_writer') THEN CREATE ROLE keep_writer; END IF;
END $$;
CREATE SCHEMA sales; CREATE SCHEMA pipeline;
CREATE TABLE sales."Order Items" (id int, code text, qty int, note text, region text);
INSERT INTO sales."Order Items" VALUES (1, 'a', 5, 'old', 'north'), (2, 'b', 500, 'old', 'south');
ALTER TABLE sales."Order Items" ADD CONSTRAINT oi_pk PRIMARY KEY (id);
ALTER TABLE sales."Order Items" ADD CONSTRAINT oi_code_uq UNIQUE (code);
ALTER TABLE sales."Order Items" ADD CONSTRAINT oi_qty_ck CHECK (qty >= 0);
CREATE INDEX oi_region_idx ON sales."Order Items" (region DESC NULLS LAST);
CREATE INDEX "oi Lower code" ON sales."Order Items" (lower(code) text_pattern_ops);
CREATE INDEX oi_big_idx ON sales."Order Items" (qty) WHERE qty > 100 AND note <> '%x%';
COMMENT ON TABLE sales."Order Items" IS 'order lines';
COMMENT ON COLUMN sales."Order Items".note IS 'free text, it''s optional';
COMMENT ON COLUMN sales."Order Items".region IS 'sales region';
COMMENT ON INDEX sales.oi_big_idx IS 'big orders';
COMMENT ON CONSTRAINT oi_qty_ck ON sales."Order Items" IS 'no negatives';
GRANT SELECT ON sales."Order Items" TO keep_reader;
GRANT INSERT ON sales."Order Items" TO PUBLIC;
GRANT SELECT (code) ON sales."Order Items" TO keep_writer WITH GRANT OPTION;
CREATE VIEW sales.v_items WITH (check_option = local) AS
  SELECT id, code, qty FROM sales."Order Items" WHERE qty > 0;
CREATE VIEW sales.v_big AS SELECT id, qty FROM sales.v_items WHERE qty > 100;
CREATE MATERIALIZED VIEW sales.mv_totals AS
  SELECT region, sum(qty) AS total FROM sales."Order Items" GROUP BY region;
CREATE UNIQUE INDEX mv_totals_region ON sales.mv_totals (region);
GRANT SELECT ON sales.v_items TO keep_writer;
GRANT SELECT ON sales.v_big TO keep_reader;
GRANT SELECT ON sales.mv_totals TO keep_reader;
COMMENT ON VIEW sales.v_items IS 'positive lines';
COMMENT ON COLUMN sales.v_items.qty IS 'quantity';
COMMENT ON VIEW sales.v_big IS 'big lines';
COMMENT ON MATERIALIZED VIEW sales.mv_totals IS 'totals';
ALTER VIEW sales.v_big OWNER TO keep_writer;
"""

# Everything a user can see about the target and its views, by name.
SNAPSHOT = {
    "indexes": """SELECT i.relname, pg_get_indexdef(i.oid), obj_description(i.oid, 'pg_class')
                  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                  WHERE x.indrelid = %(t)s::regclass""",
    "constraints": """SELECT conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint')
                      FROM pg_constraint WHERE conrelid = %(t)s::regclass""",
    "comments": """SELECT attname, col_description(attrelid, attnum) FROM pg_attribute
                   WHERE attrelid = %(t)s::regclass AND attnum >= 0
                   UNION ALL SELECT '', obj_description(%(t)s::regclass, 'pg_class')""",
    "acl": """SELECT '', (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(relacl) a)
              FROM pg_class WHERE oid = %(t)s::regclass
              UNION ALL SELECT attname, attacl::text[] FROM pg_attribute
              WHERE attrelid = %(t)s::regclass AND attacl IS NOT NULL""",
    "views": """SELECT c.relname, c.relkind, pg_get_viewdef(c.oid), c.reloptions::text, c.relowner::regrole::text,
                       obj_description(c.oid, 'pg_class'), col_description(c.oid, 3),
                       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a),
                       (SELECT array_agg(pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = c.oid)
                FROM pg_class c WHERE relnamespace = 'sales'::regnamespace AND relkind IN ('v', 'm')""",
}


def snapshot(cur):
    t = sql.Identifier(*TARGET).as_string(cur)
    out = {}
    for key, q in SNAPSHOT.items():
        cur.execute(q, {"t": t})
        out[key] = {r[0]: r[1:] for r in cur.fetchall()}
    return out


@pytest.fixture
def conn(db):
    c = psycopg2.connect(db)
    with c.cursor() as cur:
        cur.execute(SETUP)
    c.commit()
    yield c
    c.rollback()
    c.close()


def make_staging(cur, drop=()):
    cols = sql.SQL(", ").join(sql.SQL("{} " + typ).format(sql.Identifier(name))
                              for name, typ in COLUMNS.items() if name not in drop)
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(*STAGING), cols))
    for row in [(10, "x", 7, "new", "east"), (11, "y", 700, "new", "east"), (12, "z", 900, "new", "west")]:
        vals = [v for name, v in zip(COLUMNS, row, strict=True) if name not in drop]
        names = [sql.Identifier(n) for n in COLUMNS if n not in drop]
        cur.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(*STAGING), sql.SQL(", ").join(names), sql.SQL(", ").join(sql.Literal(v) for v in vals)))


def publish(cur):
    """The swap of ``postgres.replace`` with ``keep`` around it, in one transaction."""
    kept = keep.capture(cur, TARGET)
    warnings = keep.restore(cur, kept, STAGING)
    keep.drop_dependents(cur, kept)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {0}; DROP TABLE IF EXISTS {1};"
                        " ALTER TABLE {2} SET SCHEMA {0}; ALTER TABLE {3} RENAME TO {4}").format(
        sql.Identifier(TARGET[0]), sql.Identifier(*TARGET), sql.Identifier(*STAGING),
        sql.Identifier(TARGET[0], STAGING[1]), sql.Identifier(TARGET[1])))
    return warnings + keep.after_swap(cur, kept)


def rows(cur, query):
    cur.execute(query)
    return cur.fetchall()


def test_everything_comes_back_on_new_rows(conn):
    cur = conn.cursor()
    before = snapshot(cur)
    make_staging(cur)
    assert publish(cur) == []
    assert snapshot(cur) == before
    conn.commit()
    assert snapshot(cur) == before
    assert rows(cur, 'SELECT id FROM sales."Order Items" ORDER BY id') == [(10,), (11,), (12,)]
    assert rows(cur, "SELECT id FROM sales.v_items ORDER BY id") == [(10,), (11,), (12,)]
    assert rows(cur, "SELECT id FROM sales.v_big ORDER BY id") == [(11,), (12,)]
    assert rows(cur, "SELECT region, total FROM sales.mv_totals ORDER BY 1") == [("east", 707), ("west", 900)]
    # the restored constraints are enforced on the new table
    with pytest.raises(psycopg2.errors.CheckViolation):
        cur.execute("INSERT INTO sales.\"Order Items\" VALUES (13, 'w', -1, '', '')")


def test_missing_column_skips_what_mentions_it(conn):
    cur = conn.cursor()
    cur.execute('CREATE INDEX oi_note_idx ON sales."Order Items" (note)')
    cur.execute('GRANT UPDATE (note) ON sales."Order Items" TO keep_reader')
    conn.commit()
    before = snapshot(cur)
    make_staging(cur, drop=("note",))
    warnings = publish(cur)
    assert len(warnings) == 4, warnings
    assert all(w.endswith(".") and "note" in w for w in warnings)
    assert any(w.startswith("index oi_note_idx ") for w in warnings)
    assert any(w.startswith("index oi_big_idx ") for w in warnings)  # predicate mentions note
    assert any(w.startswith("comment on column note ") for w in warnings)
    assert any(w.startswith("grant of UPDATE on column note ") for w in warnings)
    after = snapshot(cur)
    for key in ("oi_note_idx", "oi_big_idx"):
        del before["indexes"][key]
    del before["comments"]["note"], before["acl"]["note"]
    assert after == before
    assert rows(cur, "SELECT id FROM sales.v_big ORDER BY id") == [(11,), (12,)]


def test_view_that_no_longer_compiles_fails_and_rolls_back(conn):
    cur = conn.cursor()
    before = snapshot(cur)
    make_staging(cur, drop=("code",))
    with pytest.raises(keep.KeepError, match=r"^view sales\.v_items cannot be recreated .*code"):
        publish(cur)
    conn.rollback()
    assert snapshot(cur) == before
    assert rows(cur, "SELECT id FROM sales.v_items ORDER BY id") == [(1,), (2,)]


def test_capture_keeps_the_callers_transaction_and_settings(conn):
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE probe (x int)")  # uncommitted work of the caller
    cur.execute("SET LOCAL search_path = sales, public")
    assert keep.capture(cur, ("sales", "no such table")) is None
    kept = keep.capture(cur, TARGET)
    assert [v.name for v in kept.views] == ["v_items", "mv_totals", "v_big"]
    assert rows(cur, "SELECT to_regclass('pg_temp.probe') IS NOT NULL, current_setting('search_path')") == [
        (True, "sales, public")]
    assert isinstance(rows(cur, "SELECT gen_random_uuid()")[0][0], str)  # no UUID typecaster installed


def test_first_publish_without_old_table(conn):
    cur = conn.cursor()
    cur.execute('DROP TABLE sales."Order Items" CASCADE')
    make_staging(cur)
    assert publish(cur) == []
    assert rows(cur, 'SELECT count(*) FROM sales."Order Items"') == [(3,)]


def test_autocommit_is_refused(conn):
    conn.autocommit = True
    with pytest.raises(DatabaseError, match="autocommit"):
        keep.capture(conn.cursor(), TARGET)


def test_a_replace_by_the_pipeline_keeps_what_users_built_and_their_view_shows_the_new_rows(env, tmp_path):
    from helpers import assert_table_matches, ingest, ok, query

    from pipeline.devtools import sample

    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    sample.generate(source, minutes=1)
    ok(ingest(env, source, "product.kept", 5000, "--export-engine", "arrow"))
    query(dsn, """CREATE INDEX kept_serial ON product.kept (sensor_serial);
                  COMMENT ON TABLE product.kept IS 'sensor minutes';
                  DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kept_reader')
                             THEN CREATE ROLE kept_reader; END IF; END $$;
                  GRANT SELECT ON product.kept TO kept_reader;
                  CREATE VIEW product.kept_per_department AS
                    SELECT department_name, count(*) AS n FROM product.kept GROUP BY department_name;
                  GRANT SELECT ON product.kept_per_department TO kept_reader""")
    sample.generate(source, minutes=1, first=1)  # a second minute: a new load replaces the table
    out = ok(ingest(env, source, "product.kept", 5000, "--export-engine", "arrow"))
    assert "was not kept" not in out
    assert_table_matches(dsn, "product", "kept", source)
    assert query(dsn, "SELECT sum(n) FROM product.kept_per_department") == [(2 * sample.SENSORS,)]
    assert query(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'kept'") == [("kept_serial",)]
    assert query(dsn, "SELECT obj_description('product.kept'::regclass, 'pg_class')") == [("sensor minutes",)]
    assert query(dsn, "SELECT has_table_privilege('kept_reader', 'product.kept', 'SELECT'), "
                      "has_table_privilege('kept_reader', 'product.kept_per_department', 'SELECT')") == [(True, True)]


def test_a_reader_of_a_view_during_a_replace_sees_the_old_rows_or_the_new_never_a_mix(env, tmp_path):
    """A reader inside a transaction keeps seeing the old rows through the view while the replace waits for it;
    once it ends, the replace commits and every later read sees only the new rows."""
    import subprocess
    import time

    from helpers import REPO, ingest, ingest_cmd, ok, query

    from pipeline.devtools import sample

    dsn, source = env["PIPELINE_PG_DSN"], tmp_path / "src"
    sample.generate(source, minutes=1)
    ok(ingest(env, source, "product.read", 5000, "--export-engine", "arrow"))
    query(dsn, "CREATE VIEW product.read_minutes AS SELECT create_at, count(*) AS n FROM product.read GROUP BY 1")
    reader = psycopg2.connect(dsn)
    reader.set_session(isolation_level="REPEATABLE READ")
    with reader.cursor() as cur:
        cur.execute("SELECT create_at, n FROM product.read_minutes ORDER BY 1")
        old = cur.fetchall()
        assert len(old) == 1
        sample.generate(source, minutes=1, first=1)  # a second minute: the next load replaces the table
        load = subprocess.Popen(ingest_cmd(source, "product.read", 5000, "--export-engine", "arrow"), cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while not query(dsn, "SELECT 1 FROM pg_locks WHERE NOT granted"):  # the publish waits for the reader
            assert load.poll() is None and time.monotonic() < deadline, load.communicate()[0]
            time.sleep(0.1)
        cur.execute("SELECT create_at, n FROM product.read_minutes ORDER BY 1")
        assert cur.fetchall() == old
        reader.commit()
    out, _ = load.communicate(timeout=300)
    assert load.returncode == 0, out
    rows = query(dsn, "SELECT n FROM product.read_minutes ORDER BY create_at")
    assert rows == [(sample.SENSORS,), (sample.SENSORS,)]
    reader.close()
