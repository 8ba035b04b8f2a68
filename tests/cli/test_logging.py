"""The command line's logging flags, and secrets masked in every library's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.checkout import ROOT
from tests.servers.s3 import AWS_ENV, SECRET_KEY, SESSION_TOKEN, MotoServer

BUCKET = "dags-logging"
PROXY_PASSWORD = "proxy-Pass-7c2e91"


def dagfetch(manifest: Path, home: Path, *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagfetch", "--manifest", str(manifest), "--home", str(home),
         *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **AWS_ENV, **(env or {})},
    )


@pytest.fixture
def s3_repo(moto_server: MotoServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    moto_server.ensure_bucket(BUCKET)
    client = moto_server.client()
    prefix = f"repo-{uuid.uuid4().hex[:8]}"
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/dag.py", Body=b"x = 1\n")
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.s3]\nurl = "s3://{BUCKET}/{prefix}"\n'
                        'conn_id = "moto"\n')
    env = {"DAGFETCH_CONN_MOTO": moto_server.connection(aws_session_token=SESSION_TOKEN)}
    return manifest, env


def test_vv_logs_every_library_and_masks_the_session_token(
    s3_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    manifest, env = s3_repo
    done = dagfetch(manifest, tmp_path / "h", "-vv", "sync", env=env)
    assert done.returncode == 0, done.stderr
    assert "DEBUG botocore" in done.stderr  # every library at debug...
    assert "x-amz-security-token" in done.stderr  # ...its canonical request included
    assert SESSION_TOKEN not in done.stderr and SECRET_KEY not in done.stderr
    assert "***" in done.stderr


def test_v_logs_dagfetch_debug_only(s3_repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    manifest, env = s3_repo
    done = dagfetch(manifest, tmp_path / "h", "-v", "sync", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("DEBUG dagfetch.") for line in lines)
    assert not [line for line in lines if not line.startswith(("DEBUG dagfetch.",
                                                               "INFO dagfetch."))]
    # --log-level and $DAGFETCH_LOG_LEVEL say the same, -q silences warnings
    for flags, extra_env in ((["--log-level", "debug"], {}),
                             ([], {"DAGFETCH_LOG_LEVEL": "DEBUG"})):
        again = dagfetch(manifest, tmp_path / "h", *flags, "sync", env={**env, **extra_env})
        assert "DEBUG dagfetch.backends.fsspec.fetcher: s3: listed 1 files" in again.stderr
        assert "botocore" not in again.stderr


def test_an_endpoint_url_with_user_info_is_masked_everywhere(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """The user information of an endpoint is a credential (a proxy's): never printed,
    whichever library quotes the endpoint."""
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.s3]\nurl = "s3://{BUCKET}/x"\nconn_id = "proxied"\n')
    endpoint = f"http://proxyuser:{PROXY_PASSWORD}@127.0.0.1:1"  # nobody listens on port 1
    connection = json.loads(moto_server.connection())
    connection["extra"]["endpoint_url"] = endpoint
    done = dagfetch(manifest, tmp_path / "h", "-vv", "sync",
                    env={"DAGFETCH_CONN_PROXIED": json.dumps(connection)})
    assert done.returncode == 1
    assert "s3: FAILED" in done.stdout
    assert PROXY_PASSWORD not in done.stdout + done.stderr
    assert "proxyuser:***@127.0.0.1:1" in done.stdout + done.stderr


def test_a_failed_repository_is_reported_once(tmp_path: Path) -> None:
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.gone]\nurl = "{tmp_path / "nowhere"}"\n')
    done = dagfetch(manifest, tmp_path / "h", "sync")
    assert done.returncode == 1
    assert done.stdout.count("gone: FAILED") == 1
    assert "nowhere" not in done.stderr  # the result line said it; no warning repeats it
    verbose = dagfetch(manifest, tmp_path / "h", "-v", "sync")
    assert "gone: sync failed" in verbose.stderr  # -v shows the log record as well
    quiet = dagfetch(manifest, tmp_path / "h", "-q", "-v", "sync")
    assert "gone: sync failed" in quiet.stderr  # -v wins over -q for dagfetch
    assert dagfetch(manifest, tmp_path / "h", "-q", "sync").stderr == ""


def test_printed_paths_are_absolute(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.py").write_text("a = 1\n")
    (tmp_path / "dagfetch.toml").write_text('[dag_repositories.r]\nurl = "repo"\n')
    base = [sys.executable, "-m", "dagfetch", "--manifest", "dagfetch.toml", "--home", "home"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    assert run("sync").returncode == 0
    assert run("path", "r").stdout.strip() == str(tmp_path / "home" / "r" / Path(
        run("path", "r").stdout.strip()).name)
    (tmp_path / "dagfetch.toml").write_text('[dag_repositories.r]\nurl = "repo"\nbad = 1\n')
    assert run("sync").stderr.startswith(f"dagfetch: error: {tmp_path / 'dagfetch.toml'}: ")
