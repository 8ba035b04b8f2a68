"""Regenerate docs/screenshots/ from a real ``dagfetch serve``, in Debian's Chromium:

    python -m tests.web.screenshots [OUT]        # default: docs/screenshots

The workspace is the project's examples (examples/dagfetch.toml), copied to a temporary
folder, synced and extracted; then a second version is made (a task added to
``daily_sales``, the weekly report removed, a file added) so that the diffs have something
to show, and a run is pinned to each version.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from dagfetch.graphs import GraphStore
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.workspace import Workspace
from tests.checkout import ROOT
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, ensure_chromium, live_server

VIEWPORT = {"width": 1280, "height": 800}


def prepare(root: Path) -> tuple[Path, Path, str, str]:
    """The examples, synced twice; the manifest, the cache root and the two version ids."""
    examples = root / "examples"
    shutil.copytree(ROOT / "examples", examples)
    manifest = examples / "dagfetch.toml"
    home = root / "home"
    workspace = Workspace.from_manifest(manifest, cache_root=home)
    store = GraphStore.for_cache(home)
    pipeline = GraphPipeline(workspace, store)
    first = pipeline.sync()[0]
    analytics = examples / "repos" / "analytics"
    daily = analytics / "daily_sales.py"
    daily.write_text(daily.read_text() + 'notify = Task("notify", dag)\nload >> notify\n')
    (analytics / "reports" / "weekly_report.py").unlink()
    (analytics / "reports" / "README.md").write_text("# Reports\n\nWeekly reports moved to "
                                                     "the reporting repository.\n")
    second = pipeline.sync()[0]
    assert first.sync and second.sync and first.sync.version_id and second.sync.version_id
    pipeline.pin_run("scheduled__2026-11-30", "daily_sales", number=1)
    pipeline.pin_run("scheduled__2026-12-01", "daily_sales")
    store.close()
    return manifest, home, first.sync.version_id, second.sync.version_id


def take(out: Path) -> list[Path]:
    problem = ensure_chromium()
    if problem:
        raise SystemExit(problem)
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        manifest, home, old, new = prepare(Path(tmp))
        shots = {
            "repositories": ("/", "light"),
            "repository": ("/repos/analytics", "light"),
            "version": (f"/repos/analytics/versions/{new}", "light"),
            "file": ("/repos/analytics/versions/current/files/daily_sales.py", "light"),
            "code-diff": (f"/repos/analytics/diff?old={old}&new={new}", "light"),
            "code-diff-split": (f"/repos/analytics/diff?old={old}&new={new}&view=split",
                                "light"),
            "dags": ("/dags", "light"),
            "dag": ("/dags/daily_sales", "light"),
            "dag-diff": ("/dags/daily_sales?version=2&compare=1", "light"),
            "dag-dark": ("/dags/daily_sales?version=2&compare=1", "dark"),
        }
        with live_server(manifest, home, Path(tmp) / "serve.log") as server, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=list(CHROMIUM_ARGS))
            for name, (path, scheme) in shots.items():
                context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
                page = context.new_page()
                answer = page.goto(server.url(path))
                assert answer is not None and answer.status == 200, path
                if path.startswith("/dags/"):
                    page.wait_for_selector("svg.dag g.node")
                target = out / f"{name}.png"
                page.screenshot(path=str(target))
                written.append(target)
                context.close()
            browser.close()
    return written


if __name__ == "__main__":
    destination = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for path in take(destination):
        print(path)
