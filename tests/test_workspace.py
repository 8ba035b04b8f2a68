"""Workspace behaviours not covered elsewhere: watch rounds and progress observers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dagfetch.cli.progress import ProgressBar
from dagfetch.models import RemoteFile, SyncResult
from dagfetch.testing import one_repository
from dagfetch.workspace import Workspace


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def started(self, repo_id: str, files: int, nbytes: int) -> None:
        self.events.append(("started", (repo_id, files, nbytes)))

    def file_done(self, repo_id: str, remote_file: RemoteFile) -> None:
        self.events.append(("file", remote_file.path))

    def finished(self, result: SyncResult) -> None:
        self.events.append(("finished", result.version_id))


def make(tmp_path: Path, **fields: object) -> tuple[Path, Workspace]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("a\n")
    (repo / "b.py").write_text("bb\n")
    return repo, one_repository(str(repo), tmp_path, **fields)


def test_observer_sees_each_download(tmp_path: Path) -> None:
    _, ws = make(tmp_path)
    recorder = Recorder()
    (result,) = ws.sync(observer=recorder)
    assert recorder.events[0] == ("started", ("r", 2, 5))
    assert sorted(e[1] for e in recorder.events if e[0] == "file") == ["a.py", "b.py"]
    assert recorder.events[-1] == ("finished", result.version_id)


def test_progress_bar_draws_and_closes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, ws = make(tmp_path)
    bar = ProgressBar()
    ws.sync(observer=bar)
    drawn = capsys.readouterr().err
    assert "r: " in drawn and "/5.00" in drawn  # total bytes of the two files
    assert bar._bar is None


def test_watch_syncs_every_refresh_interval(tmp_path: Path) -> None:
    repo, ws = make(tmp_path, refresh_interval=0.05)
    rounds: list[list[SyncResult]] = []

    def on_results(results: list[SyncResult]) -> None:
        rounds.append(results)
        if len(rounds) == 2:
            (repo / "a.py").write_text("a, changed\n")

    ws.watch(on_results=on_results, max_rounds=3)
    assert [r[0].changed for r in rounds] == [True, False, True]
    assert (ws.path("r") / "a.py").read_text() == "a, changed\n"


def test_watch_stops_when_asked(tmp_path: Path) -> None:
    _, ws = make(tmp_path, refresh_interval=3600)
    stop = threading.Event()
    thread = threading.Thread(target=ws.watch, kwargs={"stop": stop})
    thread.start()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
