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
