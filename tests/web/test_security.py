"""What keeps the server safe to point at untrusted repositories: hostile ids, names and
contents shown as text, file URLs that cannot leave a version, no secret in any answer,
bearer tokens on everything when configured, and nothing that writes but the hook."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from dagfetch.web.security import CONTENT_SECURITY_POLICY
from tests.web.conftest import (
    HOOK_SECRET,
    HOSTILE_DAG,
    HOSTILE_FILE,
    LEAKED,
    OTHER_TOKEN,
    SCRIPT,
    TOKEN,
    Site,
    make_site,
)

ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def every_page(site: Site) -> list[str]:
    dag = quote(HOSTILE_DAG, safe="")
    return [
        "/", "/repos/etl", "/repos/docs", f"/repos/etl/versions/{site.old}",
        "/repos/etl/versions/current", "/repos/etl/versions/current/files/notes.md",
        "/repos/etl/versions/current/files/etl.py",
        f"/repos/etl/versions/current/files/{quote(HOSTILE_FILE)}",
        "/repos/etl/versions/current/files/broken.py",
        f"/repos/etl/diff?old={site.old}", f"/repos/etl/diff?old={site.old}&view=split",
        "/dags", "/dags/etl", "/dags/etl?version=2&compare=1", f"/dags/{dag}", "/metrics",
    ]


def every_answer(site: Site) -> list[str]:
    dag = quote(HOSTILE_DAG, safe="")
    return [
        "/api/repos", "/api/repos/etl", "/api/repos/docs", "/api/repos/etl/versions",
        "/api/repos/etl/versions/current", "/api/repos/etl/versions/current/files/broken.py",
        f"/api/repos/etl/diff?old={site.old}", "/api/dags", "/api/dags/etl",
        "/api/dags/etl/graph", "/api/dags/etl/diff?old=1&new=2", "/api/dags/etl/runs",
        f"/api/dags/{dag}", f"/api/dags/{dag}/graph", "/api/inactive-dags",
        "/api/import-errors", "/openapi.json",
    ]


def test_hostile_ids_names_and_contents_show_as_text(client: TestClient, site: Site) -> None:
    for path in every_page(site):
        answer = client.get(path)
        assert answer.status_code == 200, path
        html = answer.text
        assert SCRIPT not in html, path
        assert "<img src=x" not in html, path
        assert "onerror=alert" not in html or "&lt;img" in html or "&#34;" in html, path
    dag_page = client.get("/dags/etl").text
    assert ESCAPED_SCRIPT in dag_page  # the task id is in the table, as text
    # the picture's data is JSON in a script block: `<` is escaped, so nothing can close it
    data = dag_page.split('id="graph-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003cscript\\u003e" in data
    notes = client.get("/repos/etl/versions/current/files/notes.md").text
    assert "&lt;script&gt;" in notes
    listing = client.get("/dags").text
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in listing


def test_every_answer_carries_a_strict_content_security_policy(client: TestClient,
                                                               site: Site) -> None:
    for path in [*every_page(site), *every_answer(site), "/nope", "/api/nope"]:
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("path", [
    "../../../../etc/passwd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "lib/../../../etc/passwd",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "lib/%00passwd",
    "..",
    "lib/..%5C..%5Cetc%5Cpasswd",
    "etl.py/../../../../etc/passwd",
])
def test_file_urls_cannot_leave_the_version(client: TestClient, path: str) -> None:
    for prefix in ("/api/repos/etl/versions/current/files/",
                   "/repos/etl/versions/current/files/"):
        # sent as written: an HTTP client would remove the dot segments itself
        status, body = raw_get(client.app, prefix + path)
        assert status == 404, (prefix + path, status)
        assert b"root:" not in body


def raw_get(app: Any, target: str) -> tuple[int, bytes]:
    """One GET straight to the ASGI app, the path exactly as given (percent-decoded as a
    server does, dot segments kept)."""
    raw_path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": unquote(raw_path),
             "raw_path": raw_path.encode(), "root_path": "", "query_string": query.encode(),
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # in a thread of its own: Playwright's sync API keeps a loop running on this one
    worker = threading.Thread(target=asyncio.run, args=(app(scope, receive, send),))
    worker.start()
    worker.join(60)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_link_out_of_the_version_is_not_followed(own_site: Site) -> None:
    site = own_site
    # a tree whose recorded file was replaced by a link leading out of it (what a damaged
    # or tampered cache looks like): the content is not served
    tree = site.workspace.path("etl", site.new, fetch=False)
    outside = site.root / "outside.txt"
    outside.write_text("outside the version\n")
    target = tree / "notes.md"
    tree.chmod(tree.stat().st_mode | stat.S_IWUSR)  # published trees are read-only
    target.unlink()
    target.symlink_to(outside)
    client = TestClient(site.app())
    answer = client.get("/api/repos/etl/versions/current/files/notes.md")
    assert "outside the version" not in answer.text
    assert answer.status_code == 200 and answer.json()["available"] is False
    page = client.get("/repos/etl/versions/current/files/notes.md")
    assert "outside the version" not in page.text
    diff = client.get(f"/api/repos/etl/diff?old={site.old}").text
    assert "outside the version" not in diff


def test_a_repository_link_out_of_it_is_never_served(own_site: Site) -> None:
    site = own_site
    site.remote.symlink("to-passwd", "/etc/passwd")
    site.remote.symlink("lib/inside", "../etl.py")  # a link inside the repository is fine
    [outcome, _] = site.pipeline.sync()
    assert outcome.error is not None and "points outside the repository" in outcome.error
    with TestClient(site.app()) as client:
        answer = client.get("/api/repos/etl/versions/current/files/to-passwd")
        assert answer.status_code == 404 and "root:" not in answer.text
        # the failed sync shows on the repository, masked and escaped
        assert client.get("/api/repos/etl").json()["last_error"]["message"] == outcome.error


def test_no_secret_in_any_page_or_answer(client: TestClient, site: Site) -> None:
    # the import error of broken.py carries LEAKED, the password of connection `leaky`
    errors = client.get("/api/import-errors").json()["items"]
    assert "***" in errors[0]["message"]
    for path in [*every_page(site), *every_answer(site), "/nope", "/api/repos/nope"]:
        text = client.get(path).text
        for secret in (LEAKED, HOOK_SECRET, TOKEN, OTHER_TOKEN):
            assert secret not in text, (path, secret)


def test_a_secret_in_the_database_is_masked_by_the_server(own_site: Site) -> None:
    site = own_site
    # an error message that reached the database unmasked (an older version, another tool)
    site.workspace.sync(["docs"])  # README.md is unchanged: write a new version by hand
    (site.root / "remote-docs" / "x.py").write_text("x = 1\n")
    [synced] = site.workspace.sync(["docs"])
    assert synced.version_id is not None
    site.store.record_extraction("docs", synced.version_id, [], {"x.py": f"token={LEAKED}"},
                                 file_count=1)
    [stored] = site.store.import_errors("docs", synced.version_id)
    assert LEAKED in stored.message  # the database has it: only the server can hide it
    with TestClient(site.app()) as client:
        for path in ("/api/import-errors?repo_id=docs", "/dags", "/repos/docs/versions/current",
                     "/api/repos/docs/versions/current"):
            text = client.get(path).text
            assert LEAKED not in text, path
    assert "token=***" in client.get("/api/import-errors?repo_id=docs").text


@pytest.fixture(scope="module")
def guarded_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("guarded"), web={"auth_conn_id": "web_auth"})


@pytest.fixture
def guarded(guarded_site: Site) -> Iterator[TestClient]:
    with TestClient(guarded_site.app()) as client:
        yield client


def test_with_tokens_everything_wants_one(guarded: TestClient, site: Site) -> None:
    for path in [*every_answer(site), "/metrics"]:
        answer = guarded.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["detail"].startswith("this server wants a bearer token")
    for path in every_page(site):
        if path == "/metrics":
            continue
        answer = guarded.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    wrong = guarded.get("/api/dags", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    for token in (TOKEN, OTHER_TOKEN):  # the password and extra.tokens (rotation)
        ok = guarded.get("/api/dags", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["total"] == 2
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/static/style.css").status_code == 200


def test_the_login_form_sets_a_cookie_and_refuses_other_hosts(guarded: TestClient) -> None:
    refused = guarded.post("/login", data={"token": "wrong", "next": "/dags"})
    assert refused.status_code == 401 and "dagfetch_token" not in refused.cookies
    answer = guarded.post("/login", data={"token": TOKEN, "next": "//evil.example/x"},
                          follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert guarded.get("/dags").status_code == 200  # the cookie lets the browser in
    guarded.post("/logout")
    assert guarded.get("/dags", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_read_only_but_the_hook(client: TestClient, site: Site, method: str) -> None:
    before = [v.version.version_id for v in site.workspace.versions("etl")]
    for path in every_answer(site):
        answer = client.request(method, path)
        assert answer.status_code == 405, (method, path, answer.status_code)
    for path in every_page(site):
        assert client.request(method, path).status_code == 405, (method, path)
    assert [v.version.version_id for v in site.workspace.versions("etl")] == before
