"""conn_id resolution, and secrets kept out of repr, logs, errors and the cache on disk."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from dagfetch._entrypoints import entry_points
from dagfetch.backends.fsspec import FsspecFetcher
from dagfetch.connections import (
    SECRETS_GROUP,
    Connection,
    ConnectionResolver,
    Secret,
    connection_from_uri,
    env_var_name,
)
from dagfetch.errors import ConnectionConfigError, FetchError
from dagfetch.manifest import parse_manifest
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import FileDone, Source
from dagfetch.redact import SecretsMasker, get_logger, mask, redact_url
from dagfetch.registry import Registry
from dagfetch.workspace import Workspace
from tests.distfactory import installed

SECRET = "hunter2-very-secret"


def test_env_var_name() -> None:
    assert env_var_name("aws_default") == "DAGFETCH_CONN_AWS_DEFAULT"
    assert env_var_name("my-conn.1") == "DAGFETCH_CONN_MY_CONN_1"


def test_uri_from_the_environment() -> None:
    env = {
        "DAGFETCH_CONN_AWS": f"s3://AKIAXYZ:{SECRET}@?region_name=eu-west-1"
        f"&session_token=tok-{SECRET}"
    }
    conn = ConnectionResolver(environ=env, backends=[]).resolve("aws")
    assert conn.conn_type == "s3" and conn.login == "AKIAXYZ"
    assert conn.password is not None and conn.password.reveal() == SECRET
    assert conn.get("region_name") == "eu-west-1"
    assert isinstance(conn.extra["session_token"], Secret)
    assert conn.revealed_extra()["session_token"] == f"tok-{SECRET}"


def test_json_from_the_environment() -> None:
    env = {
        "DAGFETCH_CONN_GIT": json.dumps(
            {"conn_type": "git", "login": "bot", "password": SECRET, "extra": {"depth": 5}}
        )
    }
    conn = ConnectionResolver(environ=env, backends=[]).resolve("git")
    assert conn.login == "bot" and conn.get("depth") == 5
    assert conn.password is not None and conn.password.reveal() == SECRET


def test_connections_file(tmp_path: Path) -> None:
    path = tmp_path / "connections.toml"
    path.write_text(
        f'[blob]\nconn_type = "azure"\npassword = "{SECRET}"\n'
        f'[http]\nuri = "https://user:{SECRET}@example.invalid"\n'
    )
    resolver = ConnectionResolver(path, environ={}, backends=[])
    assert resolver.resolve("blob").conn_type == "azure"
    assert resolver.resolve("http").login == "user"


def test_secrets_backend_plugin_through_an_entry_point(tmp_path: Path) -> None:
    source = f"def lookup(conn_id):\n    return {{'vault_conn': 's3://k:{SECRET}@'}}.get(conn_id)\n"
    with installed(
        tmp_path / "site",
        "vault-secrets",
        "0.3",
        {SECRETS_GROUP: {"vault": "vaultmod:lookup"}},
        {"vaultmod": source},
    ):
        resolver = ConnectionResolver(environ={})
        conn = resolver.resolve("vault_conn")
        assert conn.password is not None and conn.password.reveal() == SECRET
        # the vault plugin and whatever else is installed (dagfetch-airflow's source)
        count = len(entry_points(SECRETS_GROUP))
        assert count >= 1
        with pytest.raises(ConnectionConfigError, match=f"{count} secrets backend"):
            resolver.resolve("other")


def test_environment_wins_over_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"x": {"conn_type": "from_file"}}))
    resolver = ConnectionResolver(path, environ={"DAGFETCH_CONN_X": "fromenv://"}, backends=[])
    assert resolver.resolve("x").conn_type == "fromenv"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{not json", "invalid JSON"),
        ("no-scheme-here", "no scheme"),
        ('{"colour": "red"}', "unknown key 'colour'"),
        ('{"port": "eighty"}', "'port'"),
    ],
)
def test_bad_values_name_the_conn_id_and_place(value: str, words: str) -> None:
    with pytest.raises(ConnectionConfigError) as caught:
        ConnectionResolver(environ={"DAGFETCH_CONN_BAD": value}, backends=[]).resolve("bad")
    assert "connection 'bad'" in str(caught.value) and words in str(caught.value)


def test_repr_and_str_never_show_secrets() -> None:
    conn = connection_from_uri("c", f"s3://key:{SECRET}@host?aws_secret=also-{SECRET}")
    for text in (repr(conn), str(conn), repr(conn.password), str(conn.extra)):
        assert SECRET not in text
    assert isinstance(conn, Connection)


def test_a_fingerprint_names_the_secrets_without_revealing_them() -> None:
    """Extraction compares fingerprints to skip a second search of carried graphs: equal
    for the same secrets in any masker of the process, never a plain hash of them."""
    import hashlib

    first, second = SecretsMasker(), SecretsMasker()
    for m in (first, second):
        m.add("s3cret-value-1")
        m.add("another-one-2")
    assert first.fingerprint() == second.fingerprint()
    second.add("a-third-secret")
    assert first.fingerprint() != second.fingerprint()
    joined = "\0".join(sorted(["s3cret-value-1", "another-one-2"])).encode()
    assert first.fingerprint() not in {hashlib.sha256(joined).hexdigest(),
                                       hashlib.blake2b(joined).hexdigest()}


def test_redact_url() -> None:
    assert redact_url(f"https://bob:{SECRET}@host/p?sig={SECRET}&x=1") == (
        "https://bob:***@host/p?sig=***&x=1"
    )
    assert redact_url(f"s3://{SECRET}@bucket/dags") == "s3://***@bucket/dags"
    assert redact_url("s3://bucket/dags") == "s3://bucket/dags"


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    Secret(SECRET)
    log = get_logger("dagfetch.test")
    with caplog.at_level(logging.INFO, logger="dagfetch.test"):
        log.info("token is %s", SECRET)
    assert SECRET not in caplog.text and "token is ***" in caplog.text
    assert mask(f"x {SECRET} y") == "x *** y"


class LeakyFetcher(FsspecFetcher):
    """Serves a local folder under a URL carrying credentials, and fails with an error text
    that quotes the password, as lower libraries sometimes do."""

    fail = False

    def __init__(self, source: Source) -> None:
        assert source.connection is not None and source.connection.password is not None
        self.password = source.connection.password.reveal()
        local = source.url.split("@", 1)[1]
        super().__init__(Source(source.repo_id, "file:///" + local.split("/", 1)[1]))

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        if LeakyFetcher.fail:
            raise OSError(f"auth failed for password {self.password}")
        super().fetch(files, dest, on_file_done)

    def list(self) -> Listing:
        get_logger("dagfetch.test.leaky").warning("listing with %s", self.password)
        return super().list()


def test_secrets_never_reach_logs_errors_or_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "d.py").write_text("x = 1\n")
    registry = Registry()
    registry.register("leaky", LeakyFetcher)
    manifest = parse_manifest(
        {
            "dag_repositories": {
                "r": {"url": f"leaky://user:{SECRET}@host{remote}", "conn_id": "leaky"}
            }
        }
    )
    env = {"DAGFETCH_CONN_LEAKY": f"leaky://user:{SECRET}@host"}
    ws = Workspace(
        manifest,
        cache_root=tmp_path / "cache",
        registry=registry,
        connections=ConnectionResolver(environ=env, backends=[]),
    )
    with caplog.at_level(logging.DEBUG):
        ws.sync_one("r")
        (remote / "d.py").write_text("x = 2\n")
        LeakyFetcher.fail = True
        try:
            with pytest.raises(FetchError) as caught:
                ws.sync_one("r")
        finally:
            LeakyFetcher.fail = False
    assert SECRET not in str(caught.value) and "***" in str(caught.value)
    assert SECRET not in caplog.text
    assert SECRET not in repr(ws.status())
    for dirpath, _, names in os.walk(tmp_path / "cache"):
        for name in names:
            full = Path(dirpath) / name
            if not full.is_symlink():
                assert SECRET.encode() not in full.read_bytes(), full


def test_nested_secrets_are_hidden_and_revealed_at_use() -> None:
    value = json.dumps({"conn_type": "gcs", "extra": {
        "keyfile_dict": {"type": "service_account", "private_key": f"pk-{SECRET}"},
        "headers": {"X-Api-Key": f"api-{SECRET}", "Accept": "text/html"},
        "token": [f"t-{SECRET}"],
    }})
    conn = ConnectionResolver(environ={"DAGFETCH_CONN_G": value}, backends=[]).resolve("g")
    assert SECRET not in repr(conn)
    assert mask(f"pk-{SECRET}") == "***"
    revealed = conn.revealed_extra()
    assert revealed["keyfile_dict"]["private_key"] == f"pk-{SECRET}"
    assert revealed["headers"] == {"X-Api-Key": f"api-{SECRET}", "Accept": "text/html"}
    assert revealed["token"] == [f"t-{SECRET}"]
    assert revealed["keyfile_dict"]["type"] == "service_account"


def test_tracebacks_in_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    Secret(SECRET)
    log = get_logger("dagfetch.test.tb")
    with caplog.at_level(logging.INFO, logger="dagfetch.test.tb"):
        try:
            raise RuntimeError(f"backend said: bad password {SECRET}")
        except RuntimeError:
            log.exception("sync failed")
    assert "RuntimeError: backend said: bad password ***" in caplog.text
    assert SECRET not in caplog.text
