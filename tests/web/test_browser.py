"""The pages in a real browser: Debian's Chromium driven by Playwright, against ``dagfetch
serve`` running in its own process over a synced and extracted workspace. Screenshots of
each page land in tests/web/artifacts/ (kept by CI as artifacts, ignored by git)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, LiveServer, ensure_chromium, live_server
from tests.web.conftest import HOOK_SECRET, LEAKED, SCRIPT, Site, make_site

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    problem = ensure_chromium()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=list(CHROMIUM_ARGS))
        assert browser.version.split(".")[0] in _debian_version()  # the system's Chromium
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, LiveServer]]:
    root = tmp_path_factory.mktemp("served")
    site = make_site(root)
    # an error message that reached the database unmasked: the server must hide it
    (site.root / "remote-docs" / "x.py").write_text("x = 1\n")
    [synced] = site.workspace.sync(["docs"])
    assert synced.version_id is not None
    site.store.record_extraction("docs", synced.version_id, [], {"x.py": f"token={LEAKED}"},
                                 file_count=2)
    site.store.close()
    with live_server(site.manifest_path, site.workspace.cache.root, root / "serve.log") as server:
        yield site, server


class Watched:
    """A page and what it reported: dialogs (an injected ``alert``), console errors (a
    Content-Security-Policy violation) and uncaught script errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message),
                                          dialog.dismiss()))
        page.on("console", lambda message: self.errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("requestfinished", lambda request: self._finished(request))

    def _finished(self, request: Any) -> None:
        response = request.response()
        if response is not None and response.status >= 400:
            self.errors.append(f"{response.status} {request.url}")

    def clean(self) -> None:
        assert self.dialogs == [] and self.errors == []


@pytest.fixture
def page(chromium: Any) -> Iterator[Watched]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context.new_page())
    yield watched
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_picture_has_one_node_per_task(served: tuple[Site, LiveServer],
                                           page: Watched) -> None:
    _, server = served
    page.page.goto(server.url("/dags/etl"))
    page.page.wait_for_selector("svg.dag g.node")
    nodes = page.page.locator("svg.dag g.node")
    expected = page.page.request.get(server.url("/api/dags/etl/graph")).json()
    assert nodes.count() == len(expected["tasks"]) == 4
    assert page.page.locator("svg.dag path.edge").count() == len(expected["edges"]) == 3
    ids = sorted(nodes.nth(i).get_attribute("data-task-id") for i in range(nodes.count()))
    assert ids == sorted(t["task_id"] for t in expected["tasks"])
    # the hostile task id is a label, not markup: its text is the id, and no script ran
    label = page.page.locator(f'svg.dag g.node[data-task-id="{SCRIPT}"] text')
    assert label.text_content() == SCRIPT
    assert page.page.locator("svg.dag script").count() == 0
    shot(page.page, "dag")
    page.clean()


def test_a_graph_diff_is_drawn_on_the_picture(served: tuple[Site, LiveServer],
                                              page: Watched) -> None:
    _, server = served
    page.page.goto(server.url("/dags/etl"))
    page.page.select_option("#compare-version", "1")
    page.page.click("form.compare button[type=submit]")
    page.page.wait_for_selector("svg.dag g.node.added")
    added = page.page.locator("svg.dag g.node.added")
    assert added.count() == 1 and added.get_attribute("data-task-id") == "notify"
    assert page.page.locator("svg.dag g.node.same").count() == 3
    assert page.page.locator("svg.dag path.edge.added").count() == 1
    assert "compare=1" in page.page.url
    shot(page.page, "dag-diff")
    page.clean()


def test_clicking_through_a_code_diff(served: tuple[Site, LiveServer], page: Watched) -> None:
    site, server = served
    page.page.goto(server.url("/"))
    page.page.click("a[href='/repos/etl']")
    page.page.click("text=diff to current")
    page.page.wait_for_selector("table.diff.unified")
    assert f"old={site.old}" in page.page.url
    added = page.page.locator("table.diff.unified tr.add td.line")
    assert added.all_text_contents() == ["t3 = BashOperator(dag, 'notify')", "t2 >> t3"]
    shot(page.page, "code-diff")
    page.page.check("input[name=view][value=split]")
    page.page.click("form.compare button[type=submit]")
    page.page.wait_for_selector("table.diff.split")
    assert page.page.locator("table.diff.split td.line.add").count() == 2
    shot(page.page, "code-diff-split")
    page.page.click("text=data.bin")  # the list of changed files links to each file's diff
    assert page.page.url.endswith("#file-1")
    page.clean()


def test_light_and_dark_themes(served: tuple[Site, LiveServer], chromium: Any) -> None:
    _, server = served
    colours = {}
    for scheme in ("light", "dark"):
        context = chromium.new_context(color_scheme=scheme, viewport={"width": 1280,
                                                                      "height": 800})
        page = context.new_page()
        page.goto(server.url("/dags/etl"))
        page.wait_for_selector("svg.dag g.node")
        colours[scheme] = page.evaluate(
            "[getComputedStyle(document.documentElement).backgroundColor,"
            " getComputedStyle(document.documentElement).color]")
        shot(page, f"dag-{scheme}")
        context.close()
    assert colours["light"] != colours["dark"]
    background, text = colours["dark"]
    assert _lightness(background) < 0.3 < _lightness(text)  # light text on a dark page
    background, text = colours["light"]
    assert _lightness(background) > 0.7 > _lightness(text)


def _debian_version() -> str:
    import subprocess

    return subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True,
                          check=True).stdout


def _lightness(css: str) -> float:
    values = [float(part) for part in css[css.index("(") + 1:-1].split(",")[:3]]
    return sum(values) / (3 * 255)


def test_every_page_renders_without_script_errors_or_secrets(served: tuple[Site, LiveServer],
                                                             page: Watched) -> None:
    site, server = served
    paths = ["/", "/repos/etl", "/repos/docs", f"/repos/etl/versions/{site.old}",
             "/repos/etl/versions/current/files/etl.py",
             "/repos/etl/versions/current/files/notes.md", "/dags",
             "/repos/docs/versions/current", "/api/import-errors?repo_id=docs"]
    for path in paths:
        answer = page.page.goto(server.url(path))
        assert answer is not None and answer.status == 200, path
        content = page.page.content()
        for secret in (LEAKED, HOOK_SECRET):
            assert secret not in content, (path, secret)
        shot(page.page, "page" + path.replace("/", "_").replace("?", "_"))
    assert "token=***" in page.page.content()
    page.clean()


def test_the_version_page_opens_folders_without_script(served: tuple[Site, LiveServer],
                                                       chromium: Any) -> None:
    site, server = served
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url(f"/repos/etl/versions/{site.old}"))
    folder = page.locator("details:has(> summary:has-text('reports/'))")
    assert folder.get_attribute("open") is not None  # top-level folders start open
    page.click("summary:has-text('reports/')")  # <details> closes and opens without script
    assert folder.get_attribute("open") is None
    page.click("summary:has-text('reports/')")
    page.click("a:has-text('weekly.py')")
    assert page.url.endswith("/files/reports/weekly.py")
    assert "collect" in page.locator(".highlight").inner_text()
    page.goto(server.url("/dags/etl"))  # the table stands in for the picture
    assert page.locator("table.data tbody tr").count() >= 4
    context.close()


@pytest.mark.parametrize("target", [
    "/repos/etl/versions/current/files/../../../../etc/passwd",
    "/api/repos/etl/versions/current/files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/repos/etl/versions/current/files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
])
def test_traversal_over_real_http(served: tuple[Site, LiveServer], target: str) -> None:
    _, server = served
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("GET", target, skip_accept_encoding=True)  # sent as written
    connection.endheaders()
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status == 404, target
    assert b"root:" not in body
