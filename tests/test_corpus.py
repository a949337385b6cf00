"""Real files from other writers: ``../shared/parquet-testing/data/`` (Apache parquet-testing).

Every file either loads exactly - compared with its source value by value - or is refused
with one clear error line naming it, and leaves no table. The outcome of every file is
written to ``test-artifacts/corpus.md`` (the README's list comes from it).
"""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from helpers import REPO, assert_clear_failure, assert_table_matches, ingest, table_exists

CORPUS = REPO.parent / "shared" / "parquet-testing" / "data"
FILES = sorted(p.name for p in CORPUS.glob("*.parquet")) if CORPUS.is_dir() else []
REPORT = REPO / "test-artifacts" / "corpus.md"


@pytest.fixture(scope="module")
def report():
    lines: list[str] = []
    yield lines
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("| file | outcome |\n|---|---|\n" + "".join(sorted(lines)))


@pytest.mark.skipif(not FILES, reason=f"{CORPUS} is absent or empty (the parquet-testing corpus' data/)")
@pytest.mark.parametrize("name", FILES)
def test_each_corpus_file_loads_exactly_or_is_refused_clearly(env, tmp_path, report, name):
    source = tmp_path / "src"
    source.mkdir()
    (source / name).write_bytes((CORPUS / name).read_bytes())
    table = "corpus." + re.sub(r"[^a-z0-9_]", "_", name.lower().removesuffix(".parquet"))[:50]
    result = ingest(env, source, table, 1_000_000, "--export-engine", "arrow")
    schema, name_in_db = table.split(".")
    if result.returncode == 0:
        try:
            pq.read_table(CORPUS / name)
        except Exception as exc:  # noqa: BLE001 - a file Arrow cannot read must not load
            pytest.fail(f"{name} loaded although pyarrow cannot read it ({exc})")
        assert_table_matches(env["PIPELINE_PG_DSN"], schema, name_in_db, source)
        report.append(f"| {name} | loads exactly |\n")
        return
    assert_clear_failure(result, name)
    assert not table_exists(env["PIPELINE_PG_DSN"], schema, name_in_db)
    error = next(line for line in result.stdout.splitlines() if line.startswith("ERROR:"))
    report.append(f"| {name} | refused: {error.split(': ', 1)[-1][:300]} |\n")
