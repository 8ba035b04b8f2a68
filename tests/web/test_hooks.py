"""``POST /api/hooks/{repo_id}``: signed the way GitHub, GitLab or a bearer token client signs
it, or refused with nothing started; bursts coalesce into one sync (counted, not timed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dagfetch.errors import ManifestError
from dagfetch.web import create_app
from dagfetch.web.hooks import MAX_BODY, Coalescer
from dagfetch.web.settings import WebSettings
from dagfetch.workspace import Workspace
from tests.web.conftest import HOOK_SECRET, CountingRunner, Site, make_site

PUSH = json.dumps({"ref": "refs/heads/main", "after": "abc123"}).encode()


def github(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push",
            "Content-Type": "application/json"}


def hook_app(site: Site, delay: float = 0.05) -> tuple[TestClient, CountingRunner]:
    runner = site.runner()
    app = site.app(runner=runner, settings=WebSettings(hook_delay=delay))
    return TestClient(app), runner


def settle(client: TestClient) -> None:
    """Wait until every sync the hooks asked for ran."""
    assert client.app.state.hooks.coalescer.wait_idle(120)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("headers", "body"), [
    (github(PUSH), PUSH),
    ({"X-Gitlab-Token": HOOK_SECRET, "X-Gitlab-Event": "Push Hook"}, PUSH),
    ({"Authorization": f"Bearer {HOOK_SECRET}"}, b""),
], ids=["github", "gitlab", "bearer"])
def test_a_signed_push_syncs_the_repository(own_site: Site, headers: dict[str, str],
                                            body: bytes) -> None:
    own_site.remote.write("etl.py", b"# pushed\n")
    client, runner = hook_app(own_site)
    with client:
        answer = client.post("/api/hooks/etl", content=body, headers=headers)
        assert answer.status_code == 202
        assert answer.json() == {"repo_id": "etl", "sync": "scheduled"}
        settle(client)
        assert runner.synced == ["etl"]
        # the sync ran for real, and its extraction: etl.py no longer defines the DAG
        current = own_site.workspace.current("etl")
        assert current is not None and current.version_id != own_site.new
        assert own_site.store.is_extracted("etl", current.version_id)
        metrics = client.get("/metrics").text
        assert 'dagfetch_hook_requests_total{outcome="accepted",repo="etl"} 1.0' in metrics
        assert 'dagfetch_syncs_total{repo="etl",result="changed"} 1.0' in metrics


@pytest.mark.parametrize(("headers", "body"), [
    (github(PUSH, "wrong-secret"), PUSH),
    (github(b"another body"), PUSH),  # signed, but not this body
    ({**github(PUSH), "X-Hub-Signature-256": "sha1=" + "0" * 40}, PUSH),
    ({"X-Hub-Signature-256": ""}, PUSH),
    ({"X-Gitlab-Token": "wrong"}, PUSH),
    ({"X-Gitlab-Token": HOOK_SECRET[:-1]}, PUSH),
    ({"Authorization": "Bearer wrong"}, b""),
    ({"Authorization": f"Basic {HOOK_SECRET}"}, b""),
    ({}, PUSH),
], ids=["github-wrong-secret", "github-other-body", "github-sha1", "github-empty",
        "gitlab-wrong", "gitlab-prefix", "bearer-wrong", "basic", "nothing"])
def test_a_wrong_signature_is_refused_and_starts_nothing(site: Site, headers: dict[str, str],
                                                         body: bytes) -> None:
    client, runner = hook_app(site, delay=0)
    with client:
        answer = client.post("/api/hooks/etl", content=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "no valid signature or token for this "
                                           "repository's hook"}
        assert client.app.state.hooks.coalescer.wait_idle(0)  # type: ignore[attr-defined]
        metrics = client.get("/metrics").text
    assert runner.synced == []
    assert 'dagfetch_hook_requests_total{outcome="refused",repo="etl"} 1.0' in metrics


@pytest.mark.parametrize("repo_id", ["docs", "nope"])
def test_no_hook_secret_configured_is_401_for_any_credential(site: Site, repo_id: str) -> None:
    # `docs` has no web.hook_conn_id; `nope` is not in the manifest: the same answer, so
    # it does not tell which repositories exist
    client, runner = hook_app(site, delay=0)
    with client:
        for headers in (github(PUSH), {"X-Gitlab-Token": HOOK_SECRET},
                        {"Authorization": f"Bearer {HOOK_SECRET}"}, {}):
            answer = client.post(f"/api/hooks/{repo_id}", content=PUSH, headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["detail"].startswith("no valid signature")
        metrics = client.get("/metrics").text
    assert runner.synced == []
    if repo_id == "nope":  # a label never comes from a URL
        assert 'repo="nope"' not in metrics and 'repo="(unknown)"' in metrics


def test_ten_pushes_in_a_burst_cause_one_sync(own_site: Site) -> None:
    own_site.remote.write("etl.py", b"# pushed\n")
    client, runner = hook_app(own_site, delay=3.0)  # the ten requests come well within it
    with client:
        answers = [client.post("/api/hooks/etl", content=PUSH, headers=github(PUSH)).json()
                   for _ in range(10)]
        settle(client)
    assert [a["sync"] for a in answers] == ["scheduled"] + ["joined"] * 9
    assert runner.synced == ["etl"]
    assert runner.runs == 1


def test_a_ping_is_accepted_and_syncs_nothing(site: Site) -> None:
    client, runner = hook_app(site, delay=0)
    body = b'{"zen": "Keep it logically awesome."}'
    with client:
        answer = client.post("/api/hooks/etl", content=body,
                             headers={**github(body), "X-GitHub-Event": "ping"})
        assert answer.status_code == 202 and answer.json()["sync"] == "none"
    assert runner.synced == []


def test_a_body_past_the_limit_is_refused_unread(site: Site) -> None:
    client, runner = hook_app(site, delay=0)
    body = b"x" * (MAX_BODY + 1)
    with client:
        answer = client.post("/api/hooks/etl", content=body, headers=github(body))
    assert answer.status_code == 413 and runner.synced == []


def test_a_rotated_secret_takes_effect_without_a_restart(own_site: Site,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client, runner = hook_app(own_site, delay=0)
    with client:
        # the environment comes before the connections file: the secret is rotated there
        monkeypatch.setenv("DAGFETCH_CONN_ETL_HOOK", json.dumps({"password": "rotated-1"}))
        old = client.post("/api/hooks/etl", content=PUSH, headers=github(PUSH))
        new = client.post("/api/hooks/etl", content=PUSH,
                          headers=github(PUSH, "rotated-1"))
        settle(client)
    assert (old.status_code, new.status_code) == (401, 202)
    assert runner.synced == ["etl"]


def test_a_hook_connection_that_cannot_be_resolved_fails_at_start(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    data = json.loads(site.connections_path.read_text())
    del data["etl_hook"]
    site.connections_path.write_text(json.dumps(data))
    restarted = Workspace(site.workspace.manifest, cache_root=site.workspace.cache.root)
    with pytest.raises(ManifestError, match=r"dag_repositories\.etl\.web\.hook_conn_id"):
        create_app(restarted, site.store)
    site.store.close()


def test_a_push_while_a_sync_runs_queues_exactly_one_more() -> None:
    # the coalescer alone, with a sync that waits to be let go: a unit test of its states
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def run(repo_id: str) -> None:
        ran.append(repo_id)
        started.set()
        release.wait(30)

    coalescer = Coalescer(run, delay=0)
    assert coalescer.request("etl") == "scheduled"
    assert started.wait(30)
    assert [coalescer.request("etl") for _ in range(5)] == ["queued"] + ["joined"] * 4
    release.set()
    assert coalescer.wait_idle(30)
    assert ran == ["etl", "etl"]
    coalescer.close()


def test_a_failing_sync_does_not_stop_later_ones() -> None:
    calls: list[str] = []

    def run(repo_id: str) -> None:
        calls.append(repo_id)
        raise RuntimeError("the remote is down")

    coalescer = Coalescer(run, delay=0)
    coalescer.request("etl")
    assert coalescer.wait_idle(30)
    coalescer.request("etl")
    assert coalescer.wait_idle(30)
    assert calls == ["etl", "etl"]
    coalescer.close()
