"""`python -m pipeline status` after a crash and after a finished load."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO, ingest, ok, write_awkward


def status(env: dict, config_dir, *options: str) -> str:
    cfg = config_dir.parent / "luigi.cfg"
    cfg.write_text(f"[pipeline]\nconfig_dir = {config_dir}\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "status", *options], cwd=REPO, capture_output=True,
                            text=True, env={**env, "LUIGI_CONFIG_PATH": str(cfg)}, timeout=60)
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


def test_status_of_an_append_table_shows_the_files_a_run_would_take(env, tmp_path):
    source, config = tmp_path / "src", tmp_path / "config"
    write_awkward(source, files=3, rows_per_file=100)
    config.mkdir()
    (config / "t.toml").write_text(f'[[tables]]\ntable = "st.t"\nsource = "{source}"\nmode = "append"\n')
    ok(ingest(env, source, "st.t", 100, "--mode", "append", "--export-engine", "arrow"))
    assert "appended, up to date" in status(env, config).splitlines()[1]
    write_awkward(source, files=2, rows_per_file=100, first=3)
    (source / "part 000.parquet").unlink()
    (source / "part 009.parquet").write_bytes(b"PAR1 half a file")
    shown = status(env, config, "--pending").splitlines()
    assert "cannot load: file" in shown[1] and "part 000.parquet' was removed" in shown[1], shown
    assert shown[3].split() == ["table", "mode", "rows", "last", "publish", "recorded", "new", "rewritten", "removed",
                                "being", "written"]
    assert shown[4].split()[:3] == ["st.t", "append", "300"] and shown[4].split()[5:] == ["3", "2", "0", "1", "1"], \
        shown


def test_status_of_a_merge_table_declared_in_config_reads_its_key(env, tmp_path):
    source, config = tmp_path / "src", tmp_path / "config"
    write_awkward(source, files=2, rows_per_file=100)
    config.mkdir()
    (config / "t.toml").write_text(f'[[tables]]\ntable = "st.m"\nsource = "{source}"\nmode = "merge"\nkey = "id"\n')
    shown = status(env, config, "--pending").splitlines()
    assert "new files, not started" in shown[1], shown
    assert shown[4].split() == ["st.m", "merge", "-", "-", "0", "2", "0", "0", "0"], shown
