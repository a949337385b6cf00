"""`python -m pipeline status` after a crash and after a finished load."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO, ingest, ok, write_awkward


def status(env: dict, config_dir) -> str:
    cfg = config_dir.parent / "luigi.cfg"
    cfg.write_text(f"[pipeline]\nconfig_dir = {config_dir}\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "status"], cwd=REPO, capture_output=True, text=True,
                            env={**env, "LUIGI_CONFIG_PATH": str(cfg)}, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_status_shows_progress_after_a_crash_and_up_to_date_after_the_rerun(env, tmp_path):
    source = tmp_path / "src"
    write_awkward(source, files=4, rows_per_file=100)
    config = tmp_path / "config"
    config.mkdir()
    (config / "t.toml").write_text(f'[[tables]]\ntable = "st.t"\nsource = "{source}"\nchunk_rows = 100\n')
    assert "not started" in status(env, config)
    killed = ingest(env, source, "st.t", 100, kill_at="copy.done:2")
    assert killed.returncode == -9
    line = status(env, config).splitlines()[1]
    assert "copying chunks" in line and " 2/4 " in line and " 200/400 " in line, line
    ok(ingest(env, source, "st.t", 100))
    line = status(env, config).splitlines()[1]
    assert "published, up to date" in line and " 4/4 " in line and " 400/400 " in line, line
