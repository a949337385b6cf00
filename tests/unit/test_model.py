"""Small pure functions: name parsing, chunk packing, password redaction."""

from __future__ import annotations

import pytest

from pipeline.config import redact
from pipeline.errors import ConfigError
from pipeline.model.naming import TableName
from pipeline.source.planning import pack


@pytest.mark.parametrize("text, expected", [
    ("product.product_master", ("product", "product_master")),
    ("Product.Master", ("product", "master")),
    ('"My Schema"."Ta""ble.x"', ("My Schema", 'Ta"ble.x')),
    (' s . "select" ', ("s", "select")),
])
def test_table_names_parse_like_sql(text, expected):
    name = TableName.parse(text)
    assert tuple(name) == expected
    assert TableName.parse(str(name)) == name


@pytest.mark.parametrize("text", ["nodot", "a.b.c", 'a."unclosed', "a.", "a." + "x" * 64, ""])
def test_bad_table_names_are_refused(text):
    with pytest.raises(ConfigError):
        TableName.parse(text)


def test_pack_keeps_chunks_within_the_limit_and_files_whole():
    assert pack([10, 10, 10, 10, 10], 25) == [[0, 1], [2, 3], [4]]
    assert pack([100, 1, 1], 25) == [[0], [1, 2]]
    assert pack([0, 0], 5) == [[0, 1]]


@pytest.mark.parametrize("dsn", [
    "postgresql://user:pa:ss@host:5432/db",
    "host=h password=pa:ss user=u",
    "host=h password='pa:ss x' user=u",
])
def test_redact_hides_passwords(dsn):
    assert "pa:ss" not in redact(dsn)


def test_a_load_id_is_stable_across_versions(tmp_path, monkeypatch):
    """Pinned: a load finished by an earlier version must keep its id, or a rerun would load it again."""
    from pipeline.model.load import Load, staging_name

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    load = Load("product.product_master", "/data/minutes", 1_000_000, "0123456789abcdef0123456789abcdef")
    assert load.load_id == "96b508d7a5387629"
    assert load.folder == tmp_path / "product.product_master-ee018da6" / "96b508d7a5387629"
    assert staging_name(load.load_id) == "load_96b508d7a5387629"
    assert load.manifest_file == load.folder / "chunks" / "_manifest.json"
    assert load.copied_file("chunk-00003") == load.folder / "copied" / "chunk-00003.json"


def test_export_folders_are_found_by_the_name_that_made_them(tmp_path, monkeypatch):
    from pipeline.model.load import Load

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    load = Load("a.b", "/src", 10, "f")
    made = [load.new_export_folder() for _ in range(2)]
    for folder in made:
        folder.mkdir(parents=True)
    (load.folder / "chunks").mkdir()
    assert load.export_folders() == sorted(made)


def test_a_plan_that_held_its_options_as_fields_of_its_own_is_read():
    """Plans written before ``LoadOptions`` (a load half done by that version resumes from its plan)."""
    import json

    import pyarrow as pa

    from pipeline.model.options import HIDDEN_FILE, HIDDEN_ROW, LoadOptions
    from pipeline.model.plan import Plan, SourceFile
    from pipeline.types.mapping import pg_column

    columns = [pg_column(n, t) for n, t in (("id", pa.int64()), (HIDDEN_FILE, pa.string()), (HIDDEN_ROW, pa.int64()))]
    raw = json.loads(Plan("L", "a.b", "/src", [SourceFile("f.parquet", 1, 2, "d")], [40], columns, [[0]]).to_json())
    del raw["options"]
    raw.update(mode="merge", key=["id"], file_column=HIDDEN_FILE, row_column=HIDDEN_ROW, budget=7, dedup=True)
    plan = Plan.from_json(json.dumps(raw))
    assert plan.options == LoadOptions("merge", ("id",), dedup=True, bad_rows=(7, 0))
    assert (plan.budget, plan.file_column, plan.row_column, plan.key) == (7, HIDDEN_FILE, HIDDEN_ROW, ["id"])
    assert [c.name for c in plan.table_columns] == ["id"]
    named = {**raw, "mode": "append", "key": [], "file_column": "src", "row_column": "", "budget": None, "dedup": False}
    assert Plan.from_json(json.dumps(named)).options == LoadOptions("append", source_file_column="src")
    assert Plan.from_json(plan.to_json()) == plan  # and written back in the new form


def test_a_task_id_names_what_is_loaded_not_the_declared_indexes(tmp_path, monkeypatch):
    from dataclasses import replace

    from pipeline.model.load import Load
    from pipeline.model.options import LoadOptions
    from pipeline.tasks import PublishTable

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    load = Load("a.b", "/src", 10, "f", LoadOptions("merge", ("id",)))
    indexed = load._replace(options=replace(load.options, primary_key=("id",), indexes=(("day",),)))
    plain, declared = PublishTable.of(load), PublishTable.of(indexed)
    assert plain.task_id == declared.task_id and declared.load == indexed  # the task keeps them, its id does not
    assert PublishTable.of(load._replace(options=LoadOptions("append"))).task_id != plain.task_id
