"""SIGKILL the `luigi` process group at random instants, rerunning after each, then check the table.

`make test` runs a quick form; `make chaos` runs PIPELINE_CHAOS_KILLS=25. The seed and the
schedule are printed (PIPELINE_CHAOS_SEED replays one). PIPELINE_CHAOS_ENGINE picks the export
engine (default spark), PIPELINE_CHAOS_MODES the write modes (default all three: replace, append
and merge on the files' unique ids - where every new file makes an increment of its own, and a killed one is
taken over by the next), PIPELINE_CHAOS_FORMATS the chunk formats (default both: csv and binary).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import pytest
from helpers import REPO, assert_table_matches, ingest, ingest_cmd, ok, query, write_awkward

from pipeline.model.load import Load
from pipeline.model.options import LoadOptions
from pipeline.source.listing import fingerprint, list_files

KILLS = int(os.environ.get("PIPELINE_CHAOS_KILLS", "3"))
SEED = int(os.environ.get("PIPELINE_CHAOS_SEED") or random.randrange(1, 10**6))
ENGINE = os.environ.get("PIPELINE_CHAOS_ENGINE", "spark")
MODES = os.environ.get("PIPELINE_CHAOS_MODES", "replace,append,merge").split(",")
FORMATS = os.environ.get("PIPELINE_CHAOS_FORMATS", "csv,binary").split(",")
KEYS = {"merge": "id"}  # the awkward files' ids are unique, so a merge must end as the union, like an append
FILES, ROWS = 8, 2000
PHASES = ["plan", "export", "copy", "verify", "publish"]


def recorded(dsn: str) -> set[str]:
    exists = query(dsn, "SELECT to_regclass('pipeline.published_files') IS NOT NULL")[0][0]
    return {name for (name,) in query(dsn, "SELECT name FROM pipeline.published_files")} if exists else set()


def current_load(source, dsn: str, mode: str) -> Load:
    """The load a run would make now: of the whole folder, or of the files not yet recorded."""
    files = list_files(source)
    if mode != "replace":
        files = [f for f in files if f.name not in recorded(dsn)] or files  # all recorded: the last increment
    return Load("chaos.t", str(source), ROWS, fingerprint(files), LoadOptions(mode, tuple(KEYS.get(mode, "").split(",")
                                                                                         if mode in KEYS else ())))


def phase(load: Load, dsn: str) -> str:
    """Where the load stands, from its state folder and the published table."""
    if load.incremental and len(recorded(dsn)) == len(list_files(load.source)):
        return "done"
    if not load.plan_file.exists():
        return "plan"
    manifest = load.manifest_file
    if not manifest.exists():
        return "export"
    if len(list((load.folder / "copied").glob("*.json"))) < len(json.loads(manifest.read_text())["chunks"]):
        return "copy"
    if not load.verified_file.exists():
        return "verify"
    published = query(dsn, "SELECT load_id FROM pipeline.published")
    return "done" if published == [(load.load_id,)] else "publish"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunk_format", FORMATS)
def test_random_kills_then_rerun_leave_exactly_the_source(env, tmp_path, state_dir, monkeypatch, mode, chunk_format):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(state_dir))
    dsn = env["PIPELINE_PG_DSN"]
    rng = random.Random(SEED)
    source = tmp_path / "src"
    write_awkward(source, files=FILES, rows_per_file=ROWS)
    # (phase to reach, then seconds to wait): the short verify and publish windows get no extra wait.
    # A run may finish before its kill lands, so the schedule holds three tries per kill wanted.
    schedule = [(p, 0.0 if p in ("verify", "publish") else round(rng.uniform(0, 0.5), 2))
                for p in (rng.choice(PHASES) for _ in range(3 * KILLS))]
    print(f"\nchaos: seed={SEED} kills={KILLS} engine={ENGINE} mode={mode} chunks={chunk_format} schedule={schedule}")
    engine = ("--export-engine", ENGINE, "--export-spark-min-rows", "0", "--export-chunk-format", chunk_format,
              "--mode", mode,
              *(("--key", KEYS[mode]) if mode in KEYS else ()))
    cmd = ingest_cmd(source, "chaos.t", ROWS, "--workers", "2", *engine)
    killed, files = [], FILES
    for target, jitter in schedule:
        if len(killed) == KILLS:
            break
        load = current_load(source, dsn, mode)
        if PHASES.index(phase(load, dsn) if phase(load, dsn) != "done" else "publish") > PHASES.index(target) \
                or phase(load, dsn) == "done":
            write_awkward(source, files=1, rows_per_file=ROWS, first=files)  # a new load, to be caught early
            files += 1
            load = current_load(source, dsn, mode)
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            now = phase(load, dsn)
            if now == "done" or PHASES.index(now) >= PHASES.index(target):
                break
            time.sleep(0.01)
        time.sleep(jitter)
        at = phase(load, dsn)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed.append(at)
            print(f"chaos: aimed at {target} +{jitter} s, killed in {at}")
        else:
            assert proc.returncode == 0, f"a run exited {proc.returncode} without being killed (seed {SEED})"
    print(f"chaos: {len(killed)} kills, by phase: { {p: killed.count(p) for p in PHASES} }")
    ok(ingest(env, source, "chaos.t", ROWS, "--workers", "2", *engine))
    assert_table_matches(dsn, "chaos", "t", source)
    assert query(dsn, "SELECT count(*), count(DISTINCT name), sum(rows) FROM pipeline.published_files") == [
        (files, files, files * ROWS)]
    (load_id,) = query(dsn, "SELECT load_id FROM pipeline.published")[0]
    if mode == "replace":
        assert query(dsn, "SELECT count(*), count(DISTINCT chunk), sum(rows) FROM pipeline.chunk_ledger "
                          "WHERE load_id = %s", (load_id,)) == [(files, files, files * ROWS)]
        assert query(dsn, "SELECT count(*) FROM pipeline.chunk_ledger WHERE load_id <> %s", (load_id,)) == [(0,)]
    else:  # a published increment's ledger rows go with its staging table
        assert query(dsn, "SELECT count(*) FROM pipeline.chunk_ledger") == [(0,)]
    assert query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'load\\_%'") \
        == []
    assert not list(state_dir.glob("*/*/chunks.tmp-*"))
    assert len(killed) == KILLS, f"only {len(killed)} of {KILLS} kills landed in {len(schedule)} tries"
    report = os.environ.get("PIPELINE_CHAOS_REPORT")
    if report:
        with open(report, "a") as f:
            by_phase = {p: killed.count(p) for p in PHASES}
            f.write(f"seed={SEED} engine={ENGINE} mode={mode} chunks={chunk_format} kills={len(killed)} "
                    f"by_phase={by_phase} loads={files - FILES + 1} final_rows={files * ROWS} exact=yes\n")
