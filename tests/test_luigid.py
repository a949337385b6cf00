"""Runs against a real luigid: its JSON API sees every task DONE with a status message; the visualiser
renders the finished graph in headless Chromium; two worker processes share one load."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from helpers import REPO, assert_table_matches, ingest_cmd, luigi_cmd, ok, query, run_luigi, write_awkward

FAMILIES = {"IngestTable", "PublishTable", "VerifyRowCount", "CopyChunkToPostgres", "ExportCsvChunks",
            "SparkReadParquet"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def api(port: int, method: str, **data):
    url = f"http://127.0.0.1:{port}/api/{method}?data=" + urllib.parse.quote(json.dumps(data))
    return json.load(urllib.request.urlopen(url, timeout=10))["response"]


def load(env, tmp_path, port: int, *extra: str):
    source = tmp_path / "src"
    write_awkward(source, files=3, rows_per_file=100)
    ok(run_luigi(env, "IngestTable", "--table", "via.luigid", "--source", str(source), "--chunk-rows", "100",
                 "--workers", "2", *extra, scheduler_port=port))
    assert_table_matches(env["PIPELINE_PG_DSN"], "via", "luigid", source)
    return source


@pytest.mark.parametrize("during_export", ["true", "false"])
def test_every_task_is_done_with_a_status_message(env, tmp_path, luigid, during_export):
    load(env, tmp_path, luigid, "--export-copy-during-export", during_export)
    done = api(luigid, "task_list", status="DONE")
    assert {task["name"] for task in done.values()} == FAMILIES
    assert sum(task["name"] == "CopyChunkToPostgres" for task in done.values()) == 3
    for task_id, task in done.items():
        message = api(luigid, "get_task_status_message", task_id=task_id)["statusMessage"]
        if task["name"] == "CopyChunkToPostgres":
            outcome = "already in the ledger (copied during the export" if during_export == "true" else "copied"
            assert "100 rows" in message and "chunk" in message and outcome in message, message
        elif task["name"] == "ExportCsvChunks":
            assert f"{3 if during_export == 'true' else 0} copied during the export" in message, message
        elif task["name"] != "IngestTable":
            assert message, f"{task_id} has no status message"
        assert env["PIPELINE_PG_DSN"] not in json.dumps(task)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")
def test_visualiser_shows_the_finished_graph(env, tmp_path, luigid):
    load(env, tmp_path, luigid)
    (root_id,) = [i for i, t in api(luigid, "task_list", status="DONE").items() if t["name"] == "IngestTable"]
    url = (f"http://127.0.0.1:{luigid}/static/visualiser/index.html#tab=graph&taskId="
           + urllib.parse.quote(root_id))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1600,1000", "--virtual-time-budget=10000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for family in FAMILIES:
        assert family in dom, f"{family} not rendered"
    shots = REPO / "test-artifacts"
    shots.mkdir(exist_ok=True)
    shot = shots / "visualiser-graph.png"
    shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_two_workers_share_one_load_through_luigid(env, tmp_path, luigid):
    source = tmp_path / "src"
    write_awkward(source, files=8, rows_per_file=100)
    # chunks copied by their own tasks, which luigid spreads over the workers
    cmd = ingest_cmd(source, "shared.t", 100, "--no-lock", "--export-copy-during-export", "false",
                     scheduler_port=luigid)
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    # A worker that found some tasks run by the other one exits with [retcode] already_running (10).
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 10]), "\n".join(o[-3000:] for o in outputs)
    assert_table_matches(env["PIPELINE_PG_DSN"], "shared", "t", source)
    assert query(env["PIPELINE_PG_DSN"], "SELECT count(*), count(DISTINCT chunk) FROM pipeline.chunk_ledger") == [
        (8, 8)]
    ran = [o.count("running   CopyChunkToPostgres") for o in outputs]
    assert sum(ran) == 8, ran  # luigid handed every chunk to exactly one of the two workers


def test_the_spark_export_links_to_the_spark_ui_which_answers_while_it_runs(env, tmp_path, luigid):
    source = tmp_path / "src"
    write_awkward(source, files=8, rows_per_file=100)
    cmd = luigi_cmd("IngestTable", "--table", "ui.t", "--source", str(source), "--chunk-rows", "100",
                    "--export-engine", "spark", scheduler_port=luigid)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = None
    try:
        deadline = time.monotonic() + 240
        while seen is None and proc.poll() is None and time.monotonic() < deadline:
            urls = [task.get("tracking_url") for task in api(luigid, "task_list", status="RUNNING").values()
                    if task["name"] == "ExportCsvChunks" and task.get("tracking_url")]
            if urls:
                seen = urls[0], urllib.request.urlopen(urls[0] + "/jobs/", timeout=10).read().decode()
            time.sleep(0.2)
    finally:
        out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    assert seen is not None, "ExportCsvChunks never showed a tracking URL while it ran"
    url, page = seen
    assert url.startswith("http://127.0.0.1:") and "parquet-pg-pipeline" in page
    assert_table_matches(env["PIPELINE_PG_DSN"], "ui", "t", source)
