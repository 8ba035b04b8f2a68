"""``dagfetch serve`` as a process: it serves under a reverse proxy's root path, and with
``--watch`` keeps the cache and the graphs fresh by itself; wrong options and settings are
refused before anything is served."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagfetch.cli import main
from tests.graphs.dagfiles import chain_dag
from tests.web.browser import live_server
from tests.web.conftest import Site, make_site

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - 127.0.0.1
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_behind_a_proxy_that_strips_the_root_path(site: Site, tmp_path: Path) -> None:
    with live_server(site.manifest_path, site.workspace.cache.root, tmp_path / "log",
                     ["--root-path", "/dagfetch"]) as server:
        status, html = get(server.url("/dags"))
        assert status == 200
        assert 'href="/dagfetch/dags/etl"' in html and 'href="/dagfetch/static/style.css"' in html
        status, _ = get(server.url("/static/style.css"))
        assert status == 200
        status, body = get(server.url("/api/dags/etl"))
        assert status == 200 and json.loads(body)["dag_id"] == "etl"


def test_watch_syncs_and_extracts_by_itself(tmp_path: Path) -> None:
    site = make_site(tmp_path, hook=False)
    manifest = site.manifest_path.read_text().replace('keep_versions = 5',
                                                      'keep_versions = 5\nrefresh_interval = "1s"')
    site.manifest_path.write_text(manifest)
    site.store.close()
    site.remote.write("late.py", chain_dag("late", ["one", "two"]))
    with live_server(site.manifest_path, site.workspace.cache.root, tmp_path / "log",
                     ["--watch"]) as server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # waits for an outcome; asserts no duration
            status, body = get(server.url("/api/dags"))
            if status == 200 and "late" in [d["dag_id"] for d in json.loads(body)["items"]]:
                break
            time.sleep(0.5)
        else:
            pytest.fail("--watch never recorded the new DAG:\n" + server.process.log_text())
        status, metrics = get(server.url("/metrics"))
    assert 'dagfetch_syncs_total{repo="etl",result="changed"}' in metrics


@pytest.mark.parametrize(("args", "says"), [
    (["--publish"], "--publish goes with --watch"),
    (["--root-path", "dagfetch"], "--root-path starts with '/'"),
    (["--root-path", "/dagfetch/"], "does not end with one"),
    (["--port", "70000"], "70000 is not in the range"),
])
def test_wrong_options_are_usage_errors(site: Site, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["--manifest", str(site.manifest_path), "--home",
                                       str(site.workspace.cache.root), "serve", *args])
    assert result.exit_code == 2
    assert says in result.output


def test_a_bad_web_setting_names_its_field(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.store.close()
    text = site.manifest_path.read_text() + "[web]\nhook_delay = -1\n"
    site.manifest_path.write_text(text)
    result = CliRunner().invoke(main, ["--manifest", str(site.manifest_path), "--home",
                                       str(site.workspace.cache.root), "serve"])
    assert result.exit_code == 2
    assert "web.hook_delay" in result.output and "Traceback" not in result.output


def test_several_workers_answer_alike(site: Site, tmp_path: Path) -> None:
    with live_server(site.manifest_path, site.workspace.cache.root, tmp_path / "log",
                     ["--workers", "2"]) as server:
        answers = set()
        for _ in range(8):  # the requests spread over both processes
            status, body = get(server.url("/api/dags/etl"))
            assert status == 200, server.process.log_text()
            answers.add(body)
        status, hooked = get(server.url("/api/repos/etl"))
    assert len(answers) == 1
    assert status == 200 and json.loads(hooked)["hook"] is True
