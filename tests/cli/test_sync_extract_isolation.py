"""``dagfetch sync --extract --json`` as a real process: a DAG file's output on fd 1 and 2
never reaches dagfetch's, and the manifest's ``[extract]`` table decides the workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagfetch.testing import LocalRemote
from tests.graphs.dagfiles import chain_dag, repo_files

ENV_PROBE = b"""import os
from lib.dagshape import DAG, BashOperator
dag = DAG('probe')
for name in sorted(os.environ):
    if name.startswith(('ALLOWED_', 'DAGFETCH_CONN_')):
        BashOperator(dag, name.lower())
"""


def dagfetch(tmp_path: Path, extract: str, *args: str) -> subprocess.CompletedProcess[str]:
    remote = LocalRemote(tmp_path / "remote")
    loud = b"import os\nos.write(1, b'{\\n' * 300000)\nos.write(2, b'x' * 300000)\n"
    files = repo_files(loud=loud + chain_dag("loud", ["a", "b"]), probe=ENV_PROBE)
    for path, data in files.items():
        remote.write(path, data)
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'{extract}\n[dag_repositories.dags]\nurl = "{remote.url}"\n')
    env = {**os.environ, "ALLOWED_FLAG": "1", "DAGFETCH_CONN_OTHER": "s3://k:v-secret@b"}
    return subprocess.run([sys.executable, "-m", "dagfetch", "--manifest", str(manifest),
                           "--home", str(tmp_path / "home"), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_sync_extract_json_stays_json_and_the_extract_table_applies(tmp_path: Path) -> None:
    done = dagfetch(tmp_path, '[extract]\nworkers = 1\nenvironment = ["ALLOWED_*"]',
                    "sync", "--extract", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["extracted"] is True
    graph = json.loads(subprocess.run(
        [sys.executable, "-m", "dagfetch", "--manifest", str(tmp_path / "dagfetch.toml"),
         "--home", str(tmp_path / "home"), "graph", "show", "probe", "--json"],
        capture_output=True, text=True, timeout=120, check=True).stdout)
    assert [t["task_id"] for t in graph["tasks"]] == ["allowed_flag"]


def test_a_bad_extract_setting_names_its_field(tmp_path: Path) -> None:
    done = dagfetch(tmp_path, '[extract]\nenvironment = ["DAGFETCH_CONN_*"]', "sync", "--extract")
    assert done.returncode != 0
    assert "extract.environment" in done.stderr and "Traceback" not in done.stderr
