"""``dagfetch validate [--connect]`` and ``dagfetch init``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagfetch.cli import main
from tests.servers.s3 import MotoServer

BUCKET = "dags-validate"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_init_writes_a_commented_manifest_that_validate_accepts(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "dagfetch.toml"
    code, out, _ = run("init", str(target))
    assert code == 0 and str(target) in out
    text = target.read_text()
    assert text.count("\n#") > 10  # commented: every field explained
    assert '[dag_repositories.dags]\n' in text and 'url = "dags"' in text
    code, out, err = run("--manifest", str(target), "--home", str(tmp_path / "h"), "validate")
    assert (code, out) == (0, "dags: ok\n"), err
    # the starter's folder does not exist yet: --connect says so, and nothing is cached
    code, out, _ = run("--manifest", str(target), "--home", str(tmp_path / "h"),
                       "validate", "--connect")
    assert code == 1 and "dags: UNREACHABLE" in out and "not found" in out
    (target.parent / "dags").mkdir()
    (target.parent / "dags" / "a.py").write_text("a = 1\n")
    code, out, _ = run("--manifest", str(target), "--home", str(tmp_path / "h"),
                       "validate", "--connect")
    assert code == 0 and out.startswith("dags: ok, 1 files listed in ")
    assert not (tmp_path / "h" / "dags").exists() or not any(
        p.name != "meta.json" for p in (tmp_path / "h" / "dags").rglob("*.py"))


def test_init_refuses_to_overwrite_and_checks_what_it_writes(tmp_path: Path) -> None:
    target = tmp_path / "dagfetch.toml"
    target.write_text("# mine\n")
    code, _, err = run("init", str(target))
    assert code == 2 and "already exists; pass --force" in err
    assert target.read_text() == "# mine\n"
    code, _, err = run("init", str(target), "--force", "--url", "s3:bucket")
    assert code == 2 and f"{target}: dag_repositories.dags.url: " in err and "'//'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dagfetch.toml"]
    assert target.read_text() == "# mine\n"
    code, _, _ = run("init", str(target), "--force", "--url", "s3://bucket/dags",
                     "--repo-id", "etl")
    text = target.read_text()
    assert code == 0 and "[dag_repositories.etl]" in text and 'url = "s3://bucket/dags"' in text


def test_validate_reports_every_bad_repository_without_fetching(tmp_path: Path) -> None:
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(
        f'[dag_repositories.good]\nurl = "{tmp_path}"\n'
        '[dag_repositories.typo]\nurl = "s3://bucket/dags"\noptions = {concurrencyy = 2}\n'
        '[dag_repositories.noconn]\nurl = "s3://bucket/dags"\nconn_id = "nowhere"\n'
    )
    code, out, _ = run("--manifest", str(manifest), "--home", str(tmp_path / "h"),
                       "validate", "--json")
    assert code == 2
    rows = {r["repo_id"]: r for r in json.loads(out)}
    assert set(rows["good"]) == {"repo_id", "ok", "error", "files", "listed_in"}
    assert rows["good"]["ok"] and rows["good"]["files"] is None
    assert "dag_repositories.typo.options.concurrencyy" in rows["typo"]["error"]
    assert "did you mean 'concurrency'" in rows["typo"]["error"]
    assert "dag_repositories.noconn.conn_id" in rows["noconn"]["error"]
    assert not (tmp_path / "h").exists() or not any((tmp_path / "h").rglob("*.py"))


@pytest.fixture
def validate_bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.ensure_bucket(BUCKET)
    monkeypatch.setenv("DAGFETCH_CONN_MOTO", moto_server.connection())
    return moto_server


def test_validate_connect_lists_each_remote_once_and_downloads_nothing(
    validate_bucket: MotoServer, tmp_path: Path
) -> None:
    prefix = f"repo-{uuid.uuid4().hex[:8]}"
    client = validate_bucket.client()
    for name in ("a.py", "b.py", "lib/c.py"):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=b"x = 1\n")
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.s3]\nurl = "s3://{BUCKET}/{prefix}"\n'
                        'conn_id = "moto"\n')
    mark = validate_bucket.mark()
    code, out, err = run("--manifest", str(manifest), "--home", str(tmp_path / "h"),
                         "validate", "--connect")
    assert code == 0, err
    assert out.startswith("s3: ok, 3 files listed in ")
    requests = validate_bucket.requests_since(mark)
    assert [m for m, _, _ in requests] == ["GET"]  # one listing page, no object read
    assert "list-type=2" in requests[0][1]


def test_validate_prints_its_documented_json(tmp_path: Path) -> None:
    from tests.cli.test_cli import assert_documented

    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.r]\nurl = "{tmp_path}"\n')
    for extra in ([], ["--connect"]):
        code, out, _ = run("--manifest", str(manifest), "--home", str(tmp_path / "h"),
                           "validate", "--json", *extra)
        assert code == 0
        assert_documented("validate", json.loads(out))
