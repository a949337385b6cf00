"""Small pure functions: name parsing, chunk packing, password redaction."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.naming import TableName
from pipeline.settings import redact
from pipeline.source import pack


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
