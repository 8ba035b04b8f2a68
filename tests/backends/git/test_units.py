"""The git backend's parts that need no server: URLs, refs, options, credentials, and the
one place where dulwich's errors become dagfetch's."""

from __future__ import annotations

import inspect
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich.errors import ChecksumMismatch, GitProtocolError, HangupException

from dagfetch.backends.git.auth import SshSession, auth_from_connection
from dagfetch.backends.git.errors import (
    DULWICH_ERRORS,
    ConnectionDropped,
    CorruptData,
    ObjectNotReceived,
    StoreCorrupt,
    WantRefused,
    translate,
)
from dagfetch.backends.git.urls import parse_location, parse_ref
from dagfetch.connections import connection_from_mapping
from dagfetch.errors import (
    ConfigError,
    DagfetchError,
    FetchError,
    ManifestError,
    RemoteNotFoundError,
)
from dagfetch.manifest import parse_manifest, url_scheme
from dagfetch.protocol import Source
from dagfetch.registry import Registry
from dagfetch.workspace import Workspace


@pytest.mark.parametrize(("url", "transport", "host", "port", "path", "user", "base"), [
    ("git://example.com/org/repo.git", "git", "example.com", None, "/org/repo.git", None,
     "git://example.com/org/repo.git"),
    ("git+https://example.com:8443/org/repo.git", "http", "example.com", 8443,
     "/org/repo.git", None, "https://example.com:8443/org/repo.git"),
    ("git+http://127.0.0.1/r.git", "http", "127.0.0.1", None, "/r.git", None,
     "http://127.0.0.1/r.git"),
    ("ssh://git@example.com:2222/org/repo.git", "ssh", "example.com", 2222, "/org/repo.git",
     "git", "ssh://git@example.com:2222/org/repo.git"),
    ("git+ssh://example.com/org/repo.git", "ssh", "example.com", None, "/org/repo.git", None,
     "ssh://example.com/org/repo.git"),
    ("git@github.com:org/repo.git", "ssh", "github.com", None, "org/repo.git", "git",
     "git@github.com:org/repo.git"),
    ("git+file:///srv/git/repo.git", "file", None, None, "/srv/git/repo.git", None,
     "file:///srv/git/repo.git"),
])
def test_locations(url: str, transport: str, host: str | None, port: int | None, path: str,
                   user: str | None, base: str) -> None:
    loc = parse_location(url)
    assert (loc.transport, loc.host, loc.port, loc.path, loc.username) == (
        transport, host, port, path, user)
    assert loc.display == base


@pytest.mark.parametrize(("url", "problem"), [
    ("git+https://user:hunter22@example.com/r.git", "password"),
    ("git://example.com/r.git?ref=main", "query"),
    ("git+ftp://example.com/r.git", "not a git URL scheme"),
    ("git+file://otherhost/r.git", "local path"),
    ("git+https:///r.git", "no host"),
    ("just-a-word", "not a git URL"),
])
def test_bad_locations_say_why(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_location(url)
    assert "hunter22" not in str(caught.value)


def test_scp_like_address_is_ssh_for_the_registry() -> None:
    assert url_scheme("git@github.com:org/repo.git") == "ssh"
    assert Registry().resolve("ssh").__name__ == "GitFetcher"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("url", "scheme"), [
    ("git@github.com:org/repo.git", "ssh"),
    ("deploy.bot@git.example.com:team/dags", "ssh"),
    ("github.com:org/repo.git", None),  # no user: the manifest calls it a missing '//'
    ("s3:bucket", None),
    ("/srv/dags", None),
    ("relative/dags", None),
])
def test_the_git_url_form(url: str, scheme: str | None) -> None:
    from dagfetch.backends.git.urls import scp_like_scheme

    assert scp_like_scheme(url) == scheme


def test_the_url_form_needs_no_dulwich() -> None:
    """The manifest reads the form where the git extra is not installed: importing it must
    not import the fetcher (dulwich)."""
    code = ("import sys; sys.modules['dulwich'] = None\n"
            "from dagfetch.backends.git.urls import scp_like_scheme\n"
            "assert scp_like_scheme('git@h:r') == 'ssh'\n"
            "assert 'dagfetch.backends.git.fetcher' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_refs() -> None:
    assert parse_ref(None).candidates == ("HEAD",)
    sha = "A" * 40
    assert parse_ref(sha).commit == sha.lower()
    assert parse_ref("main").candidates == ("refs/main", "refs/tags/main", "refs/heads/main")
    assert parse_ref("refs/pull/1/head").candidates == ("refs/pull/1/head",)
    assert parse_ref("abc1234").looks_like_short_sha
    for bad in ("a..b", "x^", "feature/", "a b", "topic.lock"):
        with pytest.raises(ConfigError, match="not a valid branch"):
            parse_ref(bad)


def test_fetcher_options_are_checked_by_name(tmp_path: Path) -> None:
    from dagfetch.backends.git import GitFetcher

    def make(**options: object) -> GitFetcher:
        return GitFetcher(Source("r", "git://h/r.git", options=options, work_dir=tmp_path))

    assert make(depth=0).depth is None
    assert make(protocol_version=2, timeout=5).timeout == 5.0
    for options, key in (({"depth": "1"}, "depth"), ({"submodules": "fetch"}, "submodules"),
                         ({"timeout": 0}, "timeout"), ({"protocol_version": 3},
                                                       "protocol_version"),
                         ({"lfs": "fetch"}, "lfs"), ({"branch": "x"}, "branch")):
        with pytest.raises(ManifestError) as caught:
            make(**options)
        assert caught.value.field == f"dag_repositories.r.options.{key}"


def test_a_misspelt_option_fails_validation_naming_it(tmp_path: Path) -> None:
    manifest = parse_manifest({"dag_repositories": {"x": {
        "url": "git://h/r.git", "options": {"dpeth": 1}}}})
    with pytest.raises(ManifestError) as caught:
        Workspace(manifest, cache_root=tmp_path / "c").validate()
    assert caught.value.field == "dag_repositories.x.options.dpeth"
    assert str(caught.value).startswith(
        "dag_repositories.x.options.dpeth: unknown option; did you mean 'depth'?")


# -- credentials -----------------------------------------------------------------------------


def test_http_token_without_login() -> None:
    conn = connection_from_mapping("c", {"extra": {"token": "tok-123456"}})
    auth = auth_from_connection(conn)
    assert auth.username == "x-access-token"
    assert auth.password is not None and auth.password.reveal() == "tok-123456"
    assert "tok-123456" not in repr(auth)


def test_unknown_connection_extra_is_refused() -> None:
    conn = connection_from_mapping("c", {"extra": {"privatekey": "x"}})
    with pytest.raises(ConfigError, match="'privatekey'"):
        auth_from_connection(conn)


def test_ssh_key_text_lives_in_a_private_temp_file_until_close(tmp_path: Path) -> None:
    conn = connection_from_mapping("deploy", {"extra": {
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"
                       "-----END OPENSSH PRIVATE KEY-----",
        "known_hosts": "example.com ssh-ed25519 AAAAC3Nza",
        "ssh_options": ["ConnectTimeout=5"],
    }})
    session = SshSession(auth_from_connection(conn))
    assert session.key_filename is not None
    key = Path(session.key_filename)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    for part in ("StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes",
                 f"UserKnownHostsFile={key.parent / 'known_hosts'}", "ConnectTimeout=5"):
        assert part in session.command
    assert "PRIVATE KEY" not in session.command
    session.close()
    assert not key.parent.exists()


# -- errors ------------------------------------------------------------------------------------


def _dulwich_exception_classes() -> list[type[BaseException]]:
    import dagfetch.backends.git.fetcher  # noqa: F401 - loads every module a fetch uses

    found = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("dulwich") or module is None:
            continue
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == name):
                found.append(obj)
    return found


def test_every_dulwich_error_is_mapped() -> None:
    classes = _dulwich_exception_classes()
    assert len(classes) > 30
    unmapped = [f"{c.__module__}.{c.__name__}" for c in classes if c not in DULWICH_ERRORS]
    assert unmapped == [], "map these in dagfetch/backends/git/errors.py"


@pytest.mark.parametrize("cls", sorted(DULWICH_ERRORS, key=lambda c: c.__name__))
def test_each_mapping_gives_a_dagfetch_error(cls: type[BaseException]) -> None:
    exc = cls.__new__(cls)
    exc.args = ("detail",)
    error = translate(exc, "git://h/r.git (ref main)", conn_id="c")
    assert isinstance(error, DagfetchError)
    assert "git://h/r.git" in str(error)


def test_lower_errors_are_translated_and_masked() -> None:
    from dagfetch.connections import Secret

    secret = Secret("s3cr3t-value-xyz")
    for exc in (KeyError(b"abc"), ConnectionRefusedError(f"refused {secret.reveal()}"),
                AssertionError("bad pkt"), ValueError("odd")):
        error = translate(exc, "where", local=False)
        assert isinstance(error, DagfetchError)
        assert secret.reveal() not in str(error)
    from dulwich.errors import NotGitRepository

    assert isinstance(translate(NotGitRepository(), "w"), RemoteNotFoundError)
    assert os.environ.get("DAGFETCH_HOME")  # the suite's conftest keeps a fake cache root


@pytest.mark.parametrize(("exc", "local", "typed"), [
    (GitProtocolError("ERR upload-pack: not our ref 0123456789"), False, WantRefused),
    (HangupException([b"fatal: git upload-pack: not our ref 0123456789"]), False, WantRefused),
    (HangupException(), False, ConnectionDropped),
    (GitProtocolError("[Errno 32] Broken pipe"), False, ConnectionDropped),
    (KeyError(b"0123456789"), False, ObjectNotReceived),
    (KeyError(b"0123456789"), True, StoreCorrupt),
    (ChecksumMismatch(b"a" * 40, b"b" * 40), False, CorruptData),
])
def test_conditions_the_fetcher_acts_on_are_typed(
    exc: BaseException, local: bool, typed: type[FetchError]
) -> None:
    """The fetcher branches on these types (deepen the history, or say the remote lacks the
    commit), never on message text."""
    error = translate(exc, "git://h/r.git (ref main)", local=local)
    assert type(error) is typed
    assert isinstance(error, FetchError) and "git://h/r.git" in str(error)


def test_the_fetcher_never_branches_on_message_text() -> None:
    import dagfetch.backends.git.fetcher as fetcher_module

    source = Path(fetcher_module.__file__ or "").read_text()
    for sign in ("not our ref", "hung up", "broke off", "is missing"):
        assert f'"{sign}"' not in source, sign
