"""config/: which tables, from where, and what a malformed entry says."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.model.load import Load
from pipeline.model.options import HIDDEN_FILE, HIDDEN_ROW, LoadOptions
from pipeline.source.catalog import TableSpec, current_load, load_tables


def write(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_tables_are_read_from_every_file_with_names_normalised(tmp_path):
    folder = write(tmp_path / "config", "a.toml", '[[tables]]\ntable = "Product.Master"\nsource = "data"\n')
    write(folder, "b.toml", '[[tables]]\ntable = \'s."Odd Name"\'\nsource = "/abs"\nchunk_rows = 7\n'
                            'mode = "append"\n')
    write(folder, "notes.txt", "ignored")
    assert load_tables(str(folder)) == [TableSpec("product.master", "data", 1_000_000),
                                        TableSpec('s."Odd Name"', "/abs", 7, LoadOptions("append"))]


@pytest.mark.parametrize("text, phrase", [
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nchunk_rows = true\n', "'chunk_rows' must be a int"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nchunk_rows = 0\n', "'chunk_rows' must be positive"),
    ('[tables]\ntable = "a.b"\n', "'tables' must be an array of tables"),
    ('[other]\nx = 1\n', "unknown section 'other'"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\n[[tables]]\ntable = "A.B"\nsource = "y"\n', "declared twice"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "upsert"\n', "mode 'upsert'; choose replace, append or merge"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "merge"\n', "mode 'merge' needs a key"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nkey = "id"\n', "a key is for mode 'merge' only"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "merge"\nkey = ["a,b"]\n', "without commas"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\ndedup = "last"\n', "dedup is for mode 'merge' only"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "merge"\nkey = "id"\ndedup = "first"\n', "unknown dedup 'first'"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\non_removed = "delete"\n', "'delete' needs a source_file_column"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\non_removed = "drop"\n', "unknown on_removed 'drop'"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "merge"\nkey = "id"\nsource_file_column = "f"\n'
     'on_removed = "delete"\n', "on_removed = 'delete' is for mode 'append' only"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nindexes = "day"\n', "'indexes' must be a list of indexes"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nindexes = [[]]\n', "'indexes' must name columns"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nprimary_key = 3\n', "'primary_key' must name columns"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nsettle_seconds = "5"\n', "'settle_seconds' must be a number"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nsettle_seconds = -1\n', "must not be negative"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmax_bad_rows = -1\n', "'max_bad_rows' must not be negative"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmax_bad_rows = 1.5\n', "'max_bad_rows' must be a int"),
    ('[[tables]]\ntable = "a.b"\nsource = "x"\nmax_bad_fraction = 2\n', "'max_bad_fraction' must be between 0 and 1"),
])
def test_a_malformed_config_names_the_file_and_the_fault(tmp_path, text, phrase):
    folder = write(tmp_path / "config", "t.toml", text)
    with pytest.raises(ConfigError, match=phrase):
        load_tables(str(folder))


def test_the_table_options_are_read_with_one_column_or_many(tmp_path):
    folder = write(tmp_path / "config", "a.toml", '[[tables]]\ntable = "a.b"\nsource = "x"\nmode = "merge"\n'
                   'key = "id"\ndedup = "last"\nsource_file_column = "f"\non_removed = "keep"\nprimary_key = "id"\n'
                   'indexes = ["day", ["f", "id"]]\nsettle_seconds = 2.5\n')
    assert load_tables(str(folder))[0] == TableSpec("a.b", "x", 1_000_000, LoadOptions(
        "merge", ("id",), "f", True, None, ("id",), (("day",), ("f", "id"))), "keep", 2.5)


def test_the_current_load_follows_the_folder_and_changes_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.parquet").write_bytes(b"x")
    first = current_load("a.b", str(source), 10)
    assert current_load("A.B", str(source), 10) == first
    (source / "b.parquet").write_bytes(b"y")
    assert current_load("a.b", str(source), 10).load_id != first.load_id


def test_a_bad_row_budget_makes_a_load_of_its_own_with_coordinates(tmp_path):
    folder = write(tmp_path / "config", "a.toml", '[[tables]]\ntable = "a.b"\nsource = "x"\nmax_bad_rows = 10\n'
                   'max_bad_fraction = 0.5\n')
    options = load_tables(str(folder))[0].options
    assert options.bad_rows == (10, 0.5) and options.budget(100) == 50 and options.budget(10) == 10
    plain = Load("a.b", "/x", 10, "f")
    budget = plain._replace(options=options)
    assert budget.load_id != plain.load_id and plain.options.budget(100) is None
    assert (options.file_column, options.row_column, options.dedup) == (HIDDEN_FILE, HIDDEN_ROW, False)
    named = LoadOptions(source_file_column="src", bad_rows=(1, 0))
    assert (named.file_column, named.row_column, named.hidden_columns) == ("src", HIDDEN_ROW, (HIDDEN_ROW,))
    assert (plain.options.file_column, plain.options.row_column) == ("", "")
