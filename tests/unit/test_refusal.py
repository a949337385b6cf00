"""Why an increment cannot be taken (``scheduling.refusal``): a recorded file rewritten or removed that config/ does
not say what to do with - the sentence, or None."""

from __future__ import annotations

import pytest

from pipeline.model.options import LoadOptions
from pipeline.model.plan import SourceFile
from pipeline.scheduling import refusal
from pipeline.source.catalog import TableSpec
from pipeline.source.increment import Pending

LOADED = ("after its rows were loaded into shop.orders; nothing was loaded - run it with --mode replace to reload the "
          "folder")


def _spec(mode: str = "append", source_file_column: str = "", on_removed: str = "refuse") -> TableSpec:
    """The table's settings as config/ gives them (a merge keyed on id)."""
    return TableSpec("shop.orders", "/data/orders", 1_000,
                     LoadOptions(mode, ("id",) if mode == "merge" else (), source_file_column), on_removed)


def _pending(rewritten: tuple[str, ...] = (), removed: tuple[str, ...] = (), new: tuple[str, ...] = ("new.parquet",),
             incomplete: tuple[str, ...] = ()) -> Pending:
    return Pending([SourceFile(n, 10, 1) for n in new], [SourceFile(n, 20, 2) for n in rewritten], list(removed),
                   list(incomplete))


@pytest.mark.parametrize("mode", ["append", "merge"])
def test_new_files_alone_are_taken(mode):
    assert refusal(_spec(mode), _pending(incomplete=("still-writing.parquet",))) is None
    assert refusal(_spec(mode), _pending(new=())) is None


def test_a_rewritten_file_in_append_mode_without_source_file_column_is_refused_with_the_remedy():
    assert refusal(_spec(), _pending(rewritten=("b.parquet",))) == (
        f"file '/data/orders/b.parquet' was rewritten {LOADED} (or declare source_file_column in config/)")


def test_more_rewritten_files_are_counted_after_the_first():
    assert refusal(_spec(), _pending(rewritten=("b.parquet", "c.parquet", "d.parquet"))) == (
        f"file '/data/orders/b.parquet' (and 2 more) was rewritten {LOADED} (or declare source_file_column in config/)")


def test_a_rewritten_file_in_append_mode_with_source_file_column_is_loaded_again():
    assert refusal(_spec(source_file_column="source_file"), _pending(rewritten=("b.parquet",))) is None


@pytest.mark.parametrize("source_file_column", ["", "source_file"])
def test_a_rewritten_file_in_merge_mode_is_refused_whatever_config_says(source_file_column):
    # a merge cannot take a file again: deleting its earlier rows would lose those it replaced in earlier files
    spec = _spec("merge", source_file_column=source_file_column)
    assert refusal(spec, _pending(rewritten=("b.parquet",))) == f"file '/data/orders/b.parquet' was rewritten {LOADED}"


def test_a_removed_file_is_refused_unless_config_says_what_to_do():
    assert refusal(_spec(), _pending(removed=("gone.parquet", "also-gone.parquet"))) == (
        f"file '/data/orders/gone.parquet' (and 1 more) was removed {LOADED} (or declare on_removed in config/)")
    assert refusal(_spec("merge"), _pending(removed=("gone.parquet",))) == (
        f"file '/data/orders/gone.parquet' was removed {LOADED} (or declare on_removed in config/)")


@pytest.mark.parametrize("mode, on_removed", [("append", "delete"), ("append", "keep"), ("merge", "keep")])
def test_a_removed_file_is_taken_when_config_says_delete_or_keep(mode, on_removed):
    spec = _spec(mode, source_file_column="source_file", on_removed=on_removed)
    assert refusal(spec, _pending(removed=("gone.parquet",))) is None


def test_a_rewritten_file_is_named_before_a_removed_one():
    assert refusal(_spec(), _pending(rewritten=("b.parquet",), removed=("gone.parquet",))).startswith(
        "file '/data/orders/b.parquet' was rewritten")
    # with the rewritten file taken again, the removed one is still refused
    assert refusal(_spec(source_file_column="source_file"),
                   _pending(rewritten=("b.parquet",), removed=("gone.parquet",))).startswith(
        "file '/data/orders/gone.parquet' was removed")
