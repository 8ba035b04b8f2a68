"""Shell completion (click's), as a shell asks for it: the COMP_* variables and
``_DAGFETCH_COMPLETE``, in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.checkout import ROOT


def complete(words: str, *, cwd: Path = ROOT, **env: str) -> list[str]:
    """What bash would be offered for the last word of ``words``."""
    done = subprocess.run(
        [sys.executable, "-m", "dagfetch"], cwd=cwd, capture_output=True, text=True,
        timeout=120, check=True,
        env={**os.environ, "_DAGFETCH_COMPLETE": "bash_complete", "COMP_WORDS": words,
             "COMP_CWORD": str(len(words.split(" ")) - 1), **env},
    )
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


def test_repository_ids_complete_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text("".join(f'[dag_repositories.{name}]\nurl = "{tmp_path}"\n'
                                for name in ("alpha", "alps", "beta")))
    assert complete("dagfetch path al", DAGFETCH_MANIFEST=str(manifest)) == ["alpha", "alps"]
    assert complete(f"dagfetch --manifest {manifest} sync alpha b") == ["beta"]
    assert complete(f"dagfetch -m {manifest} diff ") == ["alpha", "alps", "beta"]
    assert complete("dagfetch versions ", cwd=tmp_path) == ["alpha", "alps", "beta"]
    # no manifest: nothing offered, and no error printed into the shell
    assert complete("dagfetch path ", cwd=tmp_path / "..", DAGFETCH_MANIFEST="") == []


def test_dag_ids_complete_from_the_graph_store(tmp_path: Path) -> None:
    base = ["--manifest", "examples/dagfetch.toml", "--home", str(tmp_path / "home")]
    subprocess.run([sys.executable, "-m", "dagfetch", *base, "sync", "--extract"], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    words = " ".join(["dagfetch", *base])
    assert complete(f"{words} graph show da") == ["daily_sales"]
    assert set(complete(f"{words} graph history ")) == {
        "daily_sales", "marketing_campaigns", "weekly_report"}
    assert complete(f"{words} runs list --dag w") == ["weekly_report"]
    assert complete(f"{words} graph check m") == ["marketing"]  # a repository id


def test_the_completion_script_is_clicks(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dagfetch"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True,
                          env={**os.environ, "_DAGFETCH_COMPLETE": "bash_source"})
    assert "_DAGFETCH_COMPLETE=bash_complete" in done.stdout
    assert "complete -o nosort -F _dagfetch_completion dagfetch" in done.stdout
