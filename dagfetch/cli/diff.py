"""``dagfetch diff REPO A [B]``: what changed in the code from version A to version B
(default: the current one). The output shapes are the ones users know: ``dvc diff`` by
default (Added/Deleted/Modified/Renamed and a summary line), ``git diff --stat`` with
``--stat``, ``git diff`` with ``--patch`` (a patch ``git apply`` takes), and ``--json``
with ``dvc diff --json``'s lists plus, per file, what dagfetch knows (hunks with
``--patch``). ``dagfetch graph diff`` is the same question for a DAG's graph.
"""

from __future__ import annotations

import click

from dagfetch.cli.app import (
    State,
    complete_repo_ids,
    emit,
    errors_as_exit_codes,
    json_option,
    pass_state,
)


@click.command("diff")
@click.argument("repo", shell_complete=complete_repo_ids)
@click.argument("a")
@click.argument("b", default="current")
@click.option("--stat", "shape", flag_value="stat", help="Lines added and deleted per file, "
              "as `git diff --stat`.")
@click.option("--patch", "shape", flag_value="patch", help="The line diff of text files, "
              "as `git diff`.")
@click.option("--max-file-bytes", type=click.IntRange(min=0), default=1024 * 1024,
              show_default=True, help="Show no lines of a file larger than this.")
@json_option
@pass_state
def diff(state: State, repo: str, a: str, b: str, shape: str | None, max_file_bytes: int,
         as_json: bool) -> None:
    """Files added, deleted, modified and renamed in REPO from version A to version B.

    A and B are version ids, unique prefixes of at least 4 characters, or `current`
    (B's default). Evicted versions are compared from their records; their lines cannot
    be shown."""
    from dagfetch.diffs import DiffLimits

    with errors_as_exit_codes(state):
        result = state.workspace.diff(
            repo, a, b, patch=shape is not None,
            limits=DiffLimits(max_file_bytes=max_file_bytes))

    def text() -> None:
        if shape == "patch":
            click.echo(result.patch_text(), nl=False)
        elif shape == "stat":
            click.echo(result.stat_text())
        else:
            click.echo(result.summary_text())

    emit(as_json, result.to_json(), text)


COMMANDS: tuple[click.Command, ...] = (diff,)
