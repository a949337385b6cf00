"""Real files from other writers: the Apache parquet-testing corpus (``../shared/parquet-testing``).

Every file of ``data/`` and ``bad_data/`` is loaded by both engines, with CSV and with binary chunks - one
``luigi ... IngestAll`` run per engine and format over a table per file, so Spark starts once a run - and
each either loads exactly (compared with its
source value by value) or is refused with one error line naming it, leaving no table. ``REFUSED`` pins
the files that must be refused, and why; every other file must load. The outcomes go into the corpus
table of docs/corpus.md, which this test keeps true (``make corpus`` rewrites it).
"""

from __future__ import annotations

import os
import re
import uuid

import psycopg2
import pytest
from helpers import REPO, assert_table_matches, query, run_luigi, table_exists
from psycopg2 import sql

CORPUS = REPO.parent / "shared" / "parquet-testing"
FILES = sorted(f"{d}/{p.name}" for d in ("data", "bad_data") for p in (CORPUS / d).glob("*.parquet")) \
    if (CORPUS / "data").is_dir() else []
# runs: the engine, and "-binary" for binary chunks (``[export] chunk_format``); narrowed while developing
RUNS = ("arrow", "spark", "arrow-binary", "spark-binary")
ENGINES = tuple(os.environ.get("PIPELINE_CORPUS_ENGINES", " ".join(RUNS)).split())
ARTIFACTS = REPO / "test-artifacts"
CORPUS_DOC = REPO / "docs" / "corpus.md"
BEGIN, END = "<!-- corpus table: written by tests/test_corpus.py -->", "<!-- end of corpus table -->"

# file -> a phrase its refusal must hold (on both engines); the reason goes into docs/corpus.md
REFUSED = {
    "data/datapage_v1-corrupt-checksum.parquet": "is corrupt: a page does not match the CRC checksum",
    "data/rle-dict-uncompressed-corrupt-checksum.parquet": "is corrupt: a page does not match the CRC checksum",
    "data/incorrect_map_schema.parquet": "Map keys must be annotated as required",
    "data/large_string_map.brotli.parquet": "more than 2 GiB of strings",
    # refused while planning, for their time64[ns] column, before their corrupt pages are read
    "bad_data/ARROW-GH-41317.parquet": "holds nanoseconds",
    "bad_data/ARROW-GH-41321.parquet": "holds nanoseconds",
    "bad_data/ARROW-GH-45185.parquet": "repetition level at the start of a record must be 0",
    "bad_data/ARROW-GH-47662.parquet": "cannot be read",
    "bad_data/ARROW-RS-GH-6229-DICTHEADER.parquet": "cannot be read",
    "bad_data/ARROW-RS-GH-6229-LEVELS.parquet": "cannot be read",
    "bad_data/PARQUET-1481.parquet": "is not a readable Parquet file",
}

# refused by one engine only: file -> (engine, phrase)
REFUSED_BY = {
    # pyarrow 26 reads the INT96 value of year 290000 as -7188624036226874385 µs (a year before 4714 BC);
    # Spark reads it exactly
    "data/int96_from_spark.parquet": ("arrow", "outside PostgreSQL's range"),
}

# where pyarrow, which the comparison reads the source with, is wrong: the values the file's documentation gives
DOCUMENTED = {  # int96_from_spark.md, as microseconds since 1970
    "data/int96_from_spark.parquet": [1704141296123456, 1704070800000000, 253402225200000000, 1735599600000000, None,
                                      9089380393200000000],
}


def refusal(name: str, run: str) -> str | None:
    """The phrase the file's refusal on ``run`` (its engine, either format) holds, or None when it must load."""
    engine = run.removesuffix("-binary")
    if name in REFUSED_BY:
        return REFUSED_BY[name][1] if REFUSED_BY[name][0] == engine else None
    return REFUSED.get(name)


def table_of(name: str) -> str:
    return "corpus." + re.sub(r"[^a-z0-9_]", "_", name.lower().removesuffix(".parquet"))[:55]


@pytest.fixture(scope="module")
def corpus_runs(pg_admin_dsn, tmp_path_factory):
    """engine -> (dsn of its database, the run's output, {file: source folder}): one IngestAll run each."""
    root = tmp_path_factory.mktemp("corpus")
    sources, entries = {}, []
    for name in FILES:
        folder = root / "src" / table_of(name).split(".", 1)[1]
        folder.mkdir(parents=True)
        (folder / name.split("/", 1)[1]).write_bytes((CORPUS / name).read_bytes())
        sources[name] = folder
        entries.append(f'[[tables]]\ntable = "{table_of(name)}"\nsource = "{folder}"\n')
    (root / "config").mkdir()
    (root / "config" / "corpus.toml").write_text("\n".join(entries))
    admin = psycopg2.connect(pg_admin_dsn)
    admin.autocommit = True
    runs, databases = {}, []
    try:
        for engine in ENGINES:
            database = f"corpus_{engine.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE {database}")
            databases.append(database)
            params = {**psycopg2.extensions.parse_dsn(pg_admin_dsn), "dbname": database}
            dsn = psycopg2.extensions.make_dsn(**params)
            state = root / f"state-{engine}"
            state.mkdir()
            env = {**os.environ, "PIPELINE_PG_DSN": dsn, "PIPELINE_STATE_DIR": str(state)}
            result = run_luigi(env, "IngestAll", "--pipeline-config-dir", str(root / "config"),
                               "--export-engine", engine.removesuffix("-binary"), "--export-chunk-format",
                               "binary" if engine.endswith("-binary") else "csv", timeout=1500)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / f"corpus-{engine}.log").write_text(result.stdout)
            runs[engine] = (dsn, result.stdout, sources)
        yield runs
    finally:
        with admin.cursor() as cur:
            for database in databases:
                cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def _errors(output: str, name: str) -> list[str]:
    table = table_of(name)
    return [line for line in output.splitlines() if line.startswith("ERROR:") and f"(table={table}," in line]


OUTCOMES: dict[tuple[str, str], str] = {}


@pytest.mark.skipif(not FILES, reason=f"{CORPUS}/data is absent (the parquet-testing corpus)")
@pytest.mark.parametrize("engine", ENGINES)  # a run: an engine, and its chunk format
@pytest.mark.parametrize("name", FILES)
def test_each_corpus_file_loads_exactly_or_is_refused_naming_it(corpus_runs, engine, name):
    dsn, output, sources = corpus_runs[engine]
    assert "Traceback" not in output, output[output.index("Traceback") - 2000:][:6000]
    schema, table = table_of(name).split(".")
    errors = _errors(output, name)
    phrase = refusal(name, engine)
    if phrase is None:
        assert not errors, errors
        if name in DOCUMENTED:
            loaded = query(dsn, sql.SQL("SELECT (extract(epoch FROM a) * 1000000)::bigint FROM {}").format(
                sql.Identifier(schema, table)))
            assert sorted(loaded, key=str) == sorted([(v,) for v in DOCUMENTED[name]], key=str)
        else:
            assert_table_matches(dsn, schema, table, sources[name])
        OUTCOMES[name, engine] = "loads exactly"
        return
    assert len(errors) == 1, f"{name}: {errors or 'loaded, but must be refused'}"
    assert name.split("/", 1)[1] in errors[0] and phrase in errors[0], errors[0]
    assert not table_exists(dsn, schema, table)
    OUTCOMES[name, engine] = "refused"


def _via_arrow(output: str, name: str) -> bool:
    """Whether the Spark engine handed the file's chunk to pyarrow (its reader could not read it)."""
    base = name.split("/", 1)[1]
    return any("pyarrow exports it instead" in line and f"(source {base!r})" in line for line in output.splitlines())


def _reason(output: str, name: str) -> str:
    error = _errors(output, name)[0].split("): ", 1)[-1]
    error = re.sub(r"; chunk \d+ of load \w+ of \S+ was not exported and nothing was published$", "", error)
    return re.sub(r"'/[^']*/([^/']+)'", r"'\1'", error).replace("|", "\\|")[:240]


@pytest.mark.skipif(not FILES, reason=f"{CORPUS}/data is absent (the parquet-testing corpus)")
def test_the_corpus_doc_lists_every_corpus_file_with_its_outcome(corpus_runs):
    """The corpus table of docs/corpus.md is this run's outcomes (run ``make corpus`` to rewrite it)."""
    if ENGINES != RUNS or len(OUTCOMES) != len(FILES) * len(ENGINES):
        pytest.skip("runs only after every per-file test of this module passed")
    lines = ["| file | Arrow engine | Spark engine | Arrow, binary chunks | Spark, binary chunks "
             "| reason when refused |", "|---|---|---|---|---|---|"]
    for name in FILES:
        outcomes = []
        for run in RUNS:
            outcome = OUTCOMES[name, run]
            if run.startswith("spark") and outcome == "loads exactly" and _via_arrow(corpus_runs[run][1], name):
                outcome += " (read by pyarrow: Spark's reader cannot)"
            outcomes.append(outcome)
        refused_by = [e for e in ENGINES if refusal(name, e)]
        reason = _reason(corpus_runs[refused_by[0]][1], name) if refused_by else ""
        lines.append(f"| `{name}` | {' | '.join(outcomes)} | {reason} |")
    table = "\n".join(lines)
    text = CORPUS_DOC.read_text()
    begin, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    current = text[begin:end].strip()
    if os.environ.get("PIPELINE_WRITE_CORPUS_TABLE"):
        CORPUS_DOC.write_text(text[:begin] + "\n" + table + "\n" + text[end:])
        return
    assert current == table, "the corpus table of docs/corpus.md is out of date: run `make corpus`\n" + table
