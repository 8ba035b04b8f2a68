"""The JSON API, in-process: every route's answer on a synced and extracted workspace, its
pagination and its errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from dagfetch.graphs import GraphStore
from dagfetch.manifest import parse_manifest
from dagfetch.web import api
from tests.web.conftest import HOSTILE_DAG, HOSTILE_FILE, SCRIPT, Site, make_site


def test_repositories_and_one_repository(client: TestClient, site: Site) -> None:
    listed = client.get("/api/repos").json()
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 100, 0)
    by_id = {repo["repo_id"]: repo for repo in listed["items"]}
    assert set(by_id) == {"etl", "docs"}
    etl = client.get("/api/repos/etl").json()
    assert etl == by_id["etl"] | {"seconds_since_last_success":
                                  etl["seconds_since_last_success"]}
    assert etl["current_version"] == site.new
    assert etl["versions_kept"] == 2
    assert etl["hook"] is True and by_id["docs"]["hook"] is False
    assert etl["last_error"] is None and etl["last_success_at"] is not None
    assert etl["url"] == site.remote.url


def test_versions_newest_first_with_pins_and_extractions(client: TestClient,
                                                         site: Site) -> None:
    page = client.get("/api/repos/etl/versions").json()
    assert [v["version_id"] for v in page["items"]] == [site.new, site.old]
    new, old = page["items"]
    assert (new["current"], old["current"]) == (True, False)
    assert new["state"] == old["state"] == "materialized"
    assert any("manual__1" in holder for holder in old["pinned_by"])
    assert new["extraction"]["dag_count"] == 2 and new["extraction"]["error_count"] == 1
    assert old["extraction"]["dag_count"] == 3


def test_a_version_by_id_prefix_or_current(client: TestClient, site: Site) -> None:
    by_current = client.get("/api/repos/etl/versions/current").json()
    by_prefix = client.get(f"/api/repos/etl/versions/{site.new[:6]}").json()
    assert by_current == by_prefix
    assert by_current["version"]["version_id"] == site.new
    paths = [f["path"] for f in by_current["files"]["items"]]
    assert paths == sorted(paths) and "data.bin" in paths and HOSTILE_FILE in paths
    assert [e["path"] for e in by_current["import_errors"]] == ["broken.py"]


def test_file_pagination_covers_every_file_once(client: TestClient, site: Site) -> None:
    total = client.get("/api/repos/etl/versions/current").json()["files"]["total"]
    seen = []
    for offset in range(0, total, 2):
        page = client.get(f"/api/repos/etl/versions/current?limit=2&offset={offset}").json()
        assert page["files"]["limit"] == 2 and page["files"]["offset"] == offset
        seen += [f["path"] for f in page["files"]["items"]]
    assert len(seen) == total == len(set(seen)) == 7


def test_file_text_binary_and_missing(client: TestClient, site: Site) -> None:
    text = client.get("/api/repos/etl/versions/current/files/notes.md").json()
    assert text["text"] == f"# notes\n\n{SCRIPT}\n" and text["binary"] is False
    binary = client.get("/api/repos/etl/versions/current/files/data.bin").json()
    assert binary["binary"] is True and binary["text"] is None and binary["available"]
    nested = client.get(f"/api/repos/etl/versions/{site.old}/files/reports/weekly.py")
    assert nested.status_code == 200 and "weekly" in nested.json()["text"]
    gone = client.get("/api/repos/etl/versions/current/files/reports/weekly.py")
    assert gone.status_code == 404 and "reports/weekly.py" in gone.json()["detail"]
    hostile = client.get(f"/api/repos/etl/versions/current/files/{quote(HOSTILE_FILE)}")
    assert hostile.status_code == 200 and hostile.json()["path"] == HOSTILE_FILE


def test_code_diff(client: TestClient, site: Site) -> None:
    answer = client.get(f"/api/repos/etl/diff?old={site.old}&new={site.new}").json()
    assert (answer["old_version"], answer["new_version"]) == (site.old, site.new)
    assert answer["added"] == [{"path": "data.bin"}]
    assert answer["deleted"] == [{"path": "reports/weekly.py"}]
    assert answer["modified"] == [{"path": "etl.py"}]
    files = {f["path"]: f for f in answer["files"]}
    assert files["data.bin"]["binary"] is True
    assert (files["etl.py"]["insertions"], files["etl.py"]["deletions"]) == (2, 0)
    added = [line["text"] for hunk in files["etl.py"]["hunks"] for line in hunk["lines"]
             if line["kind"] == "added"]
    assert added == ["t3 = BashOperator(dag, 'notify')", "t2 >> t3"]
    # `new` defaults to the current version; without the patch no hunks are read
    short = client.get(f"/api/repos/etl/diff?old={site.old[:5]}&patch=false").json()
    assert short["new_version"] == site.new
    assert all(f["hunks"] == [] and f["insertions"] is None for f in short["files"])


def test_dags_dag_graph_history_and_runs(client: TestClient, site: Site) -> None:
    listed = client.get("/api/dags").json()
    assert [d["dag_id"] for d in listed["items"]] == sorted(["etl", HOSTILE_DAG])
    etl = client.get("/api/dags/etl").json()
    assert etl["latest"]["number"] == 2 and etl["history"]["total"] == 2
    newest, oldest = etl["history"]["items"]
    assert (newest["version"]["number"], oldest["version"]["number"]) == (2, 1)
    assert (newest["runs"], oldest["runs"]) == (1, 1)
    assert newest["sources"] == [{"repo_id": "etl", "version_id": site.new, "path": "etl.py"}]
    assert oldest["sources"][0]["version_id"] == site.old

    graph = client.get("/api/dags/etl/graph").json()
    assert sorted(t["task_id"] for t in graph["tasks"]) == sorted(
        ["extract", SCRIPT, "load", "notify"])
    assert {(e["upstream"], e["downstream"]) for e in graph["edges"]} == {
        ("extract", SCRIPT), (SCRIPT, "load"), ("load", "notify")}
    first = client.get("/api/dags/etl/graph?version=1").json()
    assert first["version"]["number"] == 1 and len(first["tasks"]) == 3

    change = client.get("/api/dags/etl/diff?old=1&new=2").json()
    assert change["tasks_added"] == ["notify"] and change["tasks_removed"] == []
    assert change["edges_added"] == [{"upstream": "load", "downstream": "notify"}]

    runs = client.get("/api/dags/etl/runs").json()
    assert [r["run_id"] for r in runs["items"]] == ["manual__2", "manual__1"]
    assert [r["number"] for r in runs["items"]] == [2, 1]
    only_first = client.get("/api/dags/etl/runs?version=1").json()
    assert [r["run_id"] for r in only_first["items"]] == ["manual__1"]
    paged = client.get("/api/dags/etl/runs?limit=1&offset=1").json()
    assert (paged["total"], [r["run_id"] for r in paged["items"]]) == (2, ["manual__1"])

    hostile = client.get(f"/api/dags/{quote(HOSTILE_DAG, safe='')}").json()
    assert hostile["dag_id"] == HOSTILE_DAG


def test_inactive_dags_and_import_errors(client: TestClient, site: Site) -> None:
    [gone] = client.get("/api/inactive-dags").json()
    assert gone["dag_id"] == "weekly"
    assert gone["last_seen"] == {"repo_id": "etl", "version_id": site.old,
                                 "path": "reports/weekly.py"}
    assert gone["gone_in"]["version_id"] == site.new
    errors = client.get("/api/import-errors").json()
    assert [(e["repo_id"], e["path"]) for e in errors["items"]] == [("etl", "broken.py")]
    assert "RuntimeError" in errors["items"][0]["message"]
    of_old = client.get(f"/api/import-errors?repo_id=etl&version_id={site.old}").json()
    assert of_old["total"] == 1
    none = client.get("/api/import-errors?repo_id=docs").json()
    assert none["total"] == 0


def test_dag_list_pagination(client: TestClient) -> None:
    first = client.get("/api/dags?limit=1").json()
    second = client.get("/api/dags?limit=1&offset=1").json()
    past = client.get("/api/dags?limit=1&offset=5").json()
    assert first["total"] == second["total"] == 2
    assert [first["items"][0]["dag_id"], second["items"][0]["dag_id"]] == sorted(
        ["etl", HOSTILE_DAG])
    assert past["items"] == [] and past["total"] == 2


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/api/repos/nope", 404, "no repository 'nope'"),
    ("/api/repos/nope/versions", 404, "no repository 'nope'"),
    ("/api/repos/etl/versions/ffffffff", 404, "no version 'ffffffff'"),
    ("/api/repos/etl/versions/current/files/nope.py", 404, "no file 'nope.py'"),
    ("/api/repos/etl/diff?old=ffffffff", 404, "no version 'ffffffff'"),
    ("/api/dags/nope", 404, "nope"),
    ("/api/dags/etl/graph?version=9", 404, "9"),
    ("/api/dags/etl/diff?old=1&new=9", 404, "9"),
    ("/api/dags/nope/runs", 404, "nope"),
    ("/api/import-errors?repo_id=nope", 404, "no repository 'nope'"),
])
def test_errors_name_what_is_missing(client: TestClient, path: str, status: int,
                                     says: str) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/json")
    assert says in answer.json()["detail"]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "limit=x"])
def test_bad_paging_is_422_with_the_field(client: TestClient, query: str) -> None:
    answer = client.get(f"/api/dags?{query}")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-1] == query.split("=")[0]


def test_a_missing_required_parameter(client: TestClient) -> None:
    answer = client.get("/api/repos/etl/diff")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "old"]


def test_unknown_api_path_is_json_404(client: TestClient) -> None:
    answer = client.get("/api/nothing-here")
    assert answer.status_code == 404 and answer.json() == {"detail": "no such page"}


def test_openapi_describes_every_api_route(site: Site) -> None:
    with TestClient(site.app()) as client:
        document = client.get("/openapi.json").json()
    # the OpenAPI document writes a `{path:path}` parameter as `{path}`
    routes = {str(getattr(route, "path", "")).replace(":path}", "}")
              for route in api.router.routes}
    assert routes and routes <= set(document["paths"])
    assert set(document["paths"]) == routes  # pages are not part of the API
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert "200" in operation["responses"] or "202" in operation["responses"], (
                path, method)
            assert "404" in operation["responses"]


def test_several_apps_over_one_cache_and_store_answer_the_same(site: Site) -> None:
    # two server workers are two apps over the same cache and database
    with TestClient(site.app()) as one, TestClient(site.app()) as two:
        for path in ("/api/repos/etl", "/api/dags", "/api/dags/etl", "/api/dags/etl/graph",
                     "/api/repos/etl/versions"):
            a, b = one.get(path).json(), two.get(path).json()
            for doc in (a, b):
                if isinstance(doc, dict):
                    doc.pop("seconds_since_last_success", None)
            assert a == b, path


def test_mounted_in_another_application(site: Site) -> None:
    # what docs/serve.md shows a scheduler doing with its own web server
    from fastapi import FastAPI

    parent = FastAPI()
    parent.mount("/dagfetch", site.app())
    with TestClient(parent) as client:
        page = client.get("/dagfetch/dags")
        assert page.status_code == 200
        assert 'href="/dagfetch/dags/etl"' in page.text
        assert 'href="/dagfetch/static/style.css"' in page.text
        assert client.get("/dagfetch/static/style.css").status_code == 200
        assert client.get("/dagfetch/api/dags/etl").json()["dag_id"] == "etl"
        assert client.get("/dagfetch/api/nope").json() == {"detail": "no such page"}


def test_stored_and_evicted_versions(own_site: Site) -> None:
    site = own_site
    site.pipeline.release_run("manual__1", "etl")  # the old version's only pin
    assert ("etl", site.old) in site.workspace.gc(grace_seconds=0).stored
    with TestClient(site.app()) as client:
        states = {v["version_id"]: v["state"]
                  for v in client.get("/api/repos/etl/versions").json()["items"]}
        assert states == {site.old: "stored", site.new: "materialized"}
        # a stored version's files are read from the content store; nothing is rebuilt
        weekly = client.get(f"/api/repos/etl/versions/{site.old}/files/reports/weekly.py")
        assert weekly.json()["available"] and "weekly" in weekly.json()["text"]
        diff = client.get(f"/api/repos/etl/diff?old={site.old}").json()
        assert {f["path"]: f["insertions"] for f in diff["files"]}["etl.py"] == 2
        assert not site.workspace.cache.layout.version("etl", site.old).exists()

        site.workspace.cache.gc({"etl": 1}, grace_seconds=0)
        states = {v["version_id"]: v["state"]
                  for v in client.get("/api/repos/etl/versions").json()["items"]}
        assert states == {site.old: "evicted", site.new: "materialized"}
        gone = client.get(f"/api/repos/etl/versions/{site.old}/files/reports/weekly.py")
        assert gone.status_code == 200
        assert (gone.json()["available"], gone.json()["text"]) == (False, None)
        diff = client.get(f"/api/repos/etl/diff?old={site.old}").json()
        etl = {f["path"]: f for f in diff["files"]}["etl.py"]
        assert etl["skipped"] == "content not in the cache (the version was evicted)"
        [old] = [v for v in client.get("/api/repos/etl/versions").json()["items"]
                 if v["version_id"] == site.old]
        assert old["refetchable"] is False  # file:// keeps no history
        assert "cannot be fetched again" in client.get("/repos/etl").text


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_the_same_answers_over_postgresql_and_mariadb(tmp_path: Path,
                                                      backend: str) -> None:
    # the store's queries behind every answer, on the servers a team runs beside its scheduler
    from tests.graphs.conftest import server_url, unique_prefix

    store = GraphStore(server_url(backend, tmp_path), prefix=unique_prefix())
    try:
        other = make_site(tmp_path, store=store)
        with TestClient(other.app()) as client:
            dags = client.get("/api/dags").json()
            assert [d["dag_id"] for d in dags["items"]] == sorted(["etl", HOSTILE_DAG])
            etl = client.get("/api/dags/etl").json()
            assert [h["runs"] for h in etl["history"]["items"]] == [1, 1]
            runs = client.get("/api/dags/etl/runs?version=1").json()
            assert [r["run_id"] for r in runs["items"]] == ["manual__1"]
            assert client.get("/api/dags/etl/diff?old=1&new=2").json()["tasks_added"] == [
                "notify"]
            [gone] = client.get("/api/inactive-dags").json()
            assert gone["dag_id"] == "weekly"
            assert client.get("/api/import-errors").json()["total"] == 1
            assert client.get("/dags/etl?version=2&compare=1").status_code == 200
            versions = client.get("/api/repos/etl/versions").json()["items"]
            assert versions[0]["extraction"]["dag_count"] == 2
    finally:
        store.drop()
        store.close()


def test_a_dag_id_with_a_slash(tmp_path: Path) -> None:
    # nothing stops a DAG id from holding "/" (Airflow's rules are Airflow's): every route
    # of a DAG takes it, quoted or not
    from dagfetch.graphs import Graph
    from dagfetch.web import create_app
    from dagfetch.workspace import Workspace

    workspace = Workspace(parse_manifest({"dag_repositories": {"r": {"url": str(tmp_path)}}}),
                          cache_root=tmp_path / "cache")
    store = GraphStore.for_cache(tmp_path / "cache")
    store.record(Graph.of("team/etl", ["a", "b"], [("a", "b")]))
    store.record(Graph.of("team/etl", ["a", "b", "c"], [("a", "b")]))
    store.pin_run("run/1", "team/etl")
    with TestClient(create_app(workspace, store)) as client:
        quoted = quote("team/etl", safe="")
        assert client.get(f"/api/dags/{quoted}").json()["dag_id"] == "team/etl"
        assert len(client.get(f"/api/dags/{quoted}/graph?version=1").json()["tasks"]) == 2
        assert client.get(f"/api/dags/{quoted}/diff?old=1&new=2").json()["tasks_added"] == [
            "c"]
        assert [r["run_id"] for r in client.get(f"/api/dags/{quoted}/runs").json()[
            "items"]] == ["run/1"]
        assert client.get("/api/dags/team/etl/graph").json()["dag_id"] == "team/etl"
        listing = client.get("/dags").text
        assert f'href="/dags/{quoted}"' in listing
        assert client.get(f"/dags/{quoted}?version=2&compare=1").status_code == 200
        assert client.get("/api/dags/team/nope").status_code == 404
    store.close()
