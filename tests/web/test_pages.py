"""The server-rendered pages, read as HTML without JavaScript: what each shows (the browser
tests check the picture and the clicking)."""

from __future__ import annotations

from html.parser import HTMLParser

from fastapi.testclient import TestClient

from tests.web.conftest import SCRIPT, Site


class Cells(HTMLParser):
    """The text of each table row of a page, and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self.links += [value or "" for name, value in attrs if name == "href"]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_repositories_page(client: TestClient, site: Site) -> None:
    page = parse(client.get("/").text)
    assert "/repos/etl" in page.links and "/repos/docs" in page.links
    assert any(site.new[:12] in " ".join(row) for row in page.rows)


def test_repository_page_lists_versions_pins_and_diff_links(client: TestClient,
                                                            site: Site) -> None:
    page = parse(client.get("/repos/etl").text)
    versions = [row for row in page.rows if row and (site.old[:12] in row[0]
                                                     or site.new[:12] in row[0])]
    assert len(versions) == 2
    assert "current" in versions[0][0] and "materialized" in versions[0][4]
    assert "manual__1" in versions[1][5]
    assert f"/repos/etl/diff?old={site.old}&amp;new={site.new}" in client.get(
        "/repos/etl").text


def test_version_page_has_the_tree_and_file_links(client: TestClient, site: Site) -> None:
    html = client.get(f"/repos/etl/versions/{site.old}").text
    page = parse(html)
    assert f"/repos/etl/versions/{site.old}/files/reports/weekly.py" in page.links
    assert "<details" in html  # folders open without JavaScript


def test_file_page_is_highlighted_with_line_anchors(client: TestClient) -> None:
    html = client.get("/repos/etl/versions/current/files/etl.py").text
    assert 'class="highlight"' in html and 'id="L-1"' in html
    assert "BashOperator" in html
    binary = client.get("/repos/etl/versions/current/files/data.bin").text
    assert "binary" in binary.lower() and "\x00" not in binary


def test_diff_page_unified_and_side_by_side(client: TestClient, site: Site) -> None:
    unified = client.get(f"/repos/etl/diff?old={site.old}").text
    assert "1 added" in unified and "1 deleted" in unified and "1 modified" in unified
    rows = parse(unified).rows
    added = [row for row in rows if len(row) == 4 and row[2] == "+"]
    assert [row[3] for row in added] == ["t3 = BashOperator(dag, 'notify')", "t2 >> t3"]
    assert "Binary file" in unified
    split = parse(client.get(f"/repos/etl/diff?old={site.old}&view=split").text).rows
    # side by side: the new line on the right with nothing on the left
    assert ["", "", "6", "t3 = BashOperator(dag, 'notify')"] in split
    assert client.get(f"/repos/etl/diff?old={site.old}&view=sideways").status_code == 400
    chooser = client.get("/repos/etl/diff").text  # no versions chosen yet: the form
    assert "<form" in chooser and "Compare" in chooser


def test_dags_page_shows_dags_import_errors_and_vanished_dags(client: TestClient) -> None:
    html = client.get("/dags").text
    page = parse(html)
    assert "/dags/etl" in page.links
    errors = html.split('id="errors-title"', 1)[1].split('id="gone-title"', 1)[0]
    assert "broken.py" in errors and "RuntimeError" in errors
    gone = [row for row in page.rows if row and row[0] == "weekly"]
    assert len(gone) == 1 and "reports/weekly.py" in gone[0][2]


def test_dag_page_tasks_table_history_runs_and_diff_marks(client: TestClient,
                                                         site: Site) -> None:
    page = parse(client.get("/dags/etl").text)
    texts = [" | ".join(row) for row in page.rows]
    assert any(row.startswith(SCRIPT) for row in texts)  # shown as text, readable
    assert any("manual__2" in row for row in texts)
    compare = client.get("/dags/etl?version=2&compare=1").text
    marked = parse(compare).rows
    assert any("notify" in row[0] and "added" in " ".join(row) for row in marked if row)
    old = client.get("/dags/etl?version=1").text
    assert "manual__1" in old and "manual__2" not in old


def test_missing_things_are_html_404_pages(client: TestClient) -> None:
    for path in ("/repos/nope", "/dags/nope", "/repos/etl/versions/ffffffff",
                 "/no/such/page"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1" in answer.text
    assert client.get("/dags/etl?version=0").status_code == 400
