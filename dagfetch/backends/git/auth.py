"""Credentials for git, from the manifest's ``conn_id``.

HTTPS: the connection's ``login`` and ``password`` (or ``extra.token``) go into an
``Authorization: Basic`` header that dulwich attaches only to requests for the repository's
own origin. SSH: ``extra.private_key`` (the key text) or ``extra.private_key_file``, and
``extra.known_hosts`` (text) or ``extra.known_hosts_file``; host keys are always checked.

Nothing here is written into the git store, its config, a URL or the cache. The one thing
OpenSSH cannot take any other way, a key given as text, lives in a private temporary folder
(mode 0700, file 0600) outside the cache for as long as the fetcher is open.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import attrs

from dagfetch.connections import Connection, Secret
from dagfetch.errors import ConfigError

KNOWN_EXTRA = frozenset(
    {"token", "username", "private_key", "private_key_file", "known_hosts",
     "known_hosts_file", "ssh_options"}
)
DEFAULT_TOKEN_USER = "x-access-token"  # noqa: S105 - a user name, not a secret


@attrs.frozen
class GitAuth:
    """What one repository authenticates with. Secrets stay :class:`Secret` until use."""

    conn_id: str | None = None
    username: str | None = None
    password: Secret | None = None
    private_key: Secret | None = None
    private_key_file: str | None = None
    known_hosts: str | None = None
    known_hosts_file: str | None = None
    ssh_options: tuple[str, ...] = ()

    @property
    def has_http_credentials(self) -> bool:
        return self.password is not None or self.username is not None


def _text(conn: Connection, key: str) -> str | None:
    value = conn.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"connection {conn.conn_id!r}: extra.{key} must be a string")
    return value


def auth_from_connection(conn: Connection | None) -> GitAuth:
    """Read a connection's git credentials; unknown ``extra`` keys are refused by name."""
    if conn is None:
        return GitAuth()
    unknown = sorted(set(conn.extra) - KNOWN_EXTRA)
    if unknown:
        raise ConfigError(f"connection {conn.conn_id!r}: unknown extra key {unknown[0]!r} for "
                          f"git (known: {', '.join(sorted(KNOWN_EXTRA))})")
    password = conn.password
    token = conn.extra.get("token")
    if password is None and isinstance(token, Secret):
        password = token
    username = conn.login or _text(conn, "username")
    if username is None and password is not None:
        username = DEFAULT_TOKEN_USER
    key = conn.extra.get("private_key")
    options = conn.get("ssh_options") or []
    if isinstance(options, str):
        import shlex  # ssh only: a git:// or https:// sync never loads it

        options = shlex.split(options)
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ConfigError(f"connection {conn.conn_id!r}: extra.ssh_options must be a list of "
                          "'Name=value' strings")
    return GitAuth(
        conn_id=conn.conn_id,
        username=username,
        password=password,
        private_key=key if isinstance(key, Secret) else None,
        private_key_file=_text(conn, "private_key_file"),
        known_hosts=_text(conn, "known_hosts"),
        known_hosts_file=_text(conn, "known_hosts_file"),
        ssh_options=tuple(options),
    )


class SshSession:
    """The ``ssh`` command line for one fetcher, and the private files it needs."""

    def __init__(self, auth: GitAuth) -> None:
        self.auth = auth
        self._tmp: Path | None = None
        self.key_filename: str | None = auth.private_key_file
        known_hosts = auth.known_hosts_file
        if auth.private_key is not None or auth.known_hosts is not None:
            self._tmp = Path(tempfile.mkdtemp(prefix="dagfetch-ssh-"))
            os.chmod(self._tmp, 0o700)
        if auth.private_key is not None:
            assert self._tmp is not None
            key_path = self._tmp / "id"
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                text = auth.private_key.reveal()
                fh.write(text if text.endswith("\n") else text + "\n")
            self.key_filename = str(key_path)
        if auth.known_hosts is not None:
            assert self._tmp is not None
            known_path = self._tmp / "known_hosts"
            known_path.write_text(auth.known_hosts.rstrip("\n") + "\n")
            known_hosts = str(known_path)
        args = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        if known_hosts:
            args += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=none"]
        if self.key_filename:
            args += ["-o", "IdentitiesOnly=yes"]
        for option in auth.ssh_options:
            args += ["-o", option]
        import shlex

        self.command = shlex.join(args)

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
