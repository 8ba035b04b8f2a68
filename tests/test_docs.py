"""Every fenced code block of README.md and docs/ runs (or is checked) in the suite.

What is done with a block, by its language:

- ``python``: run as a script (``python snippet.py``, so a snippet that only works pasted into
  a REPL fails here) in an empty working directory, against a copy of ``examples/``:
  ``$DAGFETCH_MANIFEST`` names its manifest and ``$DAGFETCH_HOME`` a fresh cache;
- ``sh``, ``bash``, ``console`` (its ``$ `` lines): checked by ``bash -n``, then run with
  ``set -e`` in a folder holding a copy of ``examples/``, when every command in it is a
  ``dagfetch`` command (``.venv/bin/dagfetch`` is the ``dagfetch`` of this interpreter);
- ``toml`` and ``json``: parsed; a TOML block with ``dag_repositories`` is a manifest and is
  validated as one (:func:`dagfetch.manifest.parse_manifest`);
- anything else (text, output, SQL, mermaid, nginx, yaml): not checked.

A block that must not run as written (it installs packages, starts a server, changes the
shell, needs credentials or is a fragment of a larger file) says so on the line before it::

    <!-- docs-test: syntax-only (the reason) -->

and is then only checked (``compile`` for Python, ``bash -n`` for shell, parsing for the
rest); the reason is required. A shell block with other commands than ``dagfetch`` must have
the marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from dagfetch.manifest import parse_manifest
from tests.checkout import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MARKER = re.compile(r"<!-- docs-test: syntax-only \((?P<reason>[^)]+)\) -->\s*\n$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)
SHELLS = {"sh", "bash", "console"}

# Blocks that fail until the extraction worker stops re-importing the caller's __main__
# (a script that starts a parser with multiprocessing `spawn` runs twice). ONE list: delete
# an entry when that change is merged; strict, so an entry that passes fails the suite.
XFAIL_UNTIL_THE_PARSER_SPARES_MAIN: dict[str, str] = {}


@attrs.frozen
class Block:
    file: str
    number: int  # 1-based among the file's fenced blocks
    line: int
    lang: str
    body: str
    syntax_only: str | None  # the reason, when marked

    @property
    def id(self) -> str:
        return f"{self.file}#{self.number}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks() -> list[Block]:
    found = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for number, match in enumerate(FENCE.finditer(text), start=1):
            before = text[: match.start()]
            marker = MARKER.search(before[-300:]) if before else None
            found.append(Block(
                file=path.relative_to(ROOT).as_posix(), number=number,
                line=before.count("\n") + 1, lang=match["lang"], body=match["body"],
                syntax_only=marker["reason"] if marker else None,
            ))
    return found


def shell_commands(block: Block) -> str:
    if block.lang != "console":
        return block.body
    return "".join(line[2:] + "\n" for line in block.body.splitlines() if line.startswith("$ "))


def only_dagfetch(script: str) -> bool:
    commands = [line.strip() for line in script.splitlines()
                if line.strip() and not line.strip().startswith("#")]
    return bool(commands) and all(
        re.match(r"^(\.venv/bin/)?dagfetch(\s|$)", command) for command in commands)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def environment(folder: Path) -> dict[str, str]:
    return {**os.environ, "DAGFETCH_MANIFEST": str(folder / "examples" / "dagfetch.toml"),
            "DAGFETCH_HOME": str(folder / "home"), "PYTHONWARNINGS": "ignore"}


ALL = blocks()


@pytest.mark.parametrize("block", ALL, ids=[b.id for b in ALL])
def test_code_block(block: Block, examples: Path, request: pytest.FixtureRequest) -> None:
    if block.id in XFAIL_UNTIL_THE_PARSER_SPARES_MAIN:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=XFAIL_UNTIL_THE_PARSER_SPARES_MAIN[block.id]))
    where = f"{block.file}:{block.line}"
    if block.lang == "python":
        compile(block.body, where, "exec")
        if block.syntax_only is None:
            run_python(block, examples)
    elif block.lang in SHELLS:
        script = shell_commands(block)
        checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, f"{where}: {checked.stderr}"
        if block.syntax_only is None:
            assert only_dagfetch(script), (
                f"{where}: a shell block with other commands than dagfetch needs the "
                "docs-test: syntax-only marker and its reason")
            run_shell(script, examples, where)
    elif block.lang == "toml":
        data = tomllib.loads(block.body)
        if "dag_repositories" in data:
            parse_manifest(data, base_dir=examples, source=where)
    elif block.lang == "json":
        json.loads(block.body)


def run_python(block: Block, folder: Path) -> None:
    work = folder / "work"  # an empty folder: the snippet must not need a dagfetch.toml here
    work.mkdir()
    script = work / "snippet.py"
    script.write_text(block.body, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=environment(folder),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{block.file}:{block.line}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr


def run_shell(script: str, folder: Path, where: str) -> None:
    script = re.sub(r"(^|\s)\.venv/bin/dagfetch", r"\1dagfetch", script)
    prelude = f'set -e\ndagfetch() {{ "{sys.executable}" -m dagfetch "$@"; }}\n'
    done = subprocess.run(["bash", "-c", prelude + script], cwd=folder, env=environment(folder),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr


def test_every_marker_gives_a_reason_and_sits_on_a_block() -> None:
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<!-- docs-test:.*?-->", text):
            assert MARKER.match(text[match.start():match.end()] + "\n"), (
                f"{path.name}: {match.group()}: say `syntax-only (reason)`")
            after = text[match.end():].lstrip("\n")
            assert after.startswith("```"), f"{path.name}: {match.group()} is not before a block"


def test_the_docs_hold_blocks_of_each_kind_this_runs() -> None:
    """The extraction itself can fail: it must find the blocks it claims to run."""
    kinds = {(b.lang, b.syntax_only is None) for b in ALL}
    assert {("python", True), ("sh", True), ("toml", True)} <= kinds
    assert len(ALL) > 40
