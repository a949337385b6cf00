"""SIGKILL the `luigi` process group at random instants, rerunning after each, then check the table.

`make test` runs a quick form; `make chaos` runs PIPELINE_CHAOS_KILLS=25. The seed and the
schedule are printed (PIPELINE_CHAOS_SEED replays one). PIPELINE_CHAOS_ENGINE picks the export
engine (default spark).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from helpers import REPO, assert_table_matches, ingest, ingest_cmd, ok, query, write_awkward

from pipeline.model.load import Load
from pipeline.source.listing import fingerprint, list_files

KILLS = int(os.environ.get("PIPELINE_CHAOS_KILLS", "6"))
SEED = int(os.environ.get("PIPELINE_CHAOS_SEED") or random.randrange(1, 10**6))
ENGINE = os.environ.get("PIPELINE_CHAOS_ENGINE", "spark")
FILES, ROWS = 8, 2000
PHASES = ["plan", "export", "copy", "verify", "publish"]


def phase(load: Load, dsn: str) -> str:
    """Where the load stands, from its state folder and the published table."""
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


def test_random_kills_then_rerun_leave_exactly_the_source(env, tmp_path, state_dir, monkeypatch):
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(state_dir))
    dsn = env["PIPELINE_PG_DSN"]
    rng = random.Random(SEED)
    source = tmp_path / "src"
    write_awkward(source, files=FILES, rows_per_file=ROWS)
    # (phase to reach, then seconds to wait): the short verify and publish windows get no extra wait.
    # A run may finish before its kill lands, so the schedule holds three tries per kill wanted.
    schedule = [(p, 0.0 if p in ("verify", "publish") else round(rng.uniform(0, 0.5), 2))
                for p in (rng.choice(PHASES) for _ in range(3 * KILLS))]
    print(f"\nchaos: seed={SEED} kills={KILLS} engine={ENGINE} schedule={schedule}")
    engine = ("--export-engine", ENGINE)
    cmd = ingest_cmd(source, "chaos.t", ROWS, "--workers", "2", *engine)
    killed, files = [], FILES
    for target, jitter in schedule:
        if len(killed) == KILLS:
            break
        load = Load("chaos.t", str(source), ROWS, fingerprint(list_files(source)))
        if PHASES.index(phase(load, dsn) if phase(load, dsn) != "done" else "publish") > PHASES.index(target) \
                or phase(load, dsn) == "done":
            write_awkward(source, files=1, rows_per_file=ROWS, first=files)  # a new load, to be caught early
            files += 1
            load = Load("chaos.t", str(source), ROWS, fingerprint(list_files(source)))
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
    (load_id,) = query(dsn, "SELECT load_id FROM pipeline.published")[0]
    assert query(dsn, "SELECT count(*), count(DISTINCT chunk), sum(rows) FROM pipeline.chunk_ledger "
                      "WHERE load_id = %s", (load_id,)) == [(files, files, files * ROWS)]
    assert query(dsn, "SELECT count(*) FROM pipeline.chunk_ledger WHERE load_id <> %s", (load_id,)) == [(0,)]
    assert query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'load\\_%'") \
        == []
    assert not list(state_dir.glob("*/*/chunks.tmp-*"))
    assert len(killed) == KILLS, f"only {len(killed)} of {KILLS} kills landed in {len(schedule)} tries"
    report = os.environ.get("PIPELINE_CHAOS_REPORT")
    if report:
        with open(report, "a") as f:
            by_phase = {p: killed.count(p) for p in PHASES}
            f.write(f"seed={SEED} engine={ENGINE} kills={len(killed)} by_phase={by_phase} "
                    f"loads={files - FILES + 1} final_rows={files * ROWS} exact=yes\n")
