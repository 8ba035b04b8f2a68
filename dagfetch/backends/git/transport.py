"""The git backend's side of the wire: one dulwich client per location, and the ref lookup.

Clients ask for thin packs, as git does: without them a server answering a shallow fetch
does not leave out what the commit we hold already has, and sends the whole tree again. A
thin pack's deltas may lean on blobs the store gave away to the content store; the store
then asks for those bases by id (:meth:`~dagfetch.backends.git.store.GitStore.fetch`).
"""

from __future__ import annotations

from typing import Any

from dulwich.client import GitClient, LocalGitClient, SSHGitClient, TCPGitClient
from dulwich.client import Urllib3HttpGitClient as HttpGitClient

from dagfetch.backends.git.auth import GitAuth, SshSession
from dagfetch.backends.git.errors import translated
from dagfetch.backends.git.urls import GitLocation, RefSpec
from dagfetch.errors import RemoteNotFoundError


class _TimedTCPGitClient(TCPGitClient):
    """git:// with a read timeout: dulwich's TCP client has none, so a daemon that accepts
    and then says nothing held a sync for ever."""

    def __init__(self, host: str, port: int | None, *, read_timeout: float) -> None:
        super().__init__(host, port)
        self._read_timeout = read_timeout

    def _connect(self, cmd: bytes, path: str | bytes,
                 protocol_version: int | None = None) -> Any:
        connected = super()._connect(cmd, path, protocol_version)
        # the socket is only reachable through the buffered reader dulwich made of it
        reader = getattr(connected[0].read, "__self__", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(self._read_timeout)
        return connected


def open_client(location: GitLocation, auth: GitAuth, *, read_timeout: float,
                http_timeout: float) -> tuple[GitClient, SshSession | None]:
    """The dulwich client for ``location``, credentials passed in memory (never in a URL or
    a config file), and the SSH session to close with it, if any."""
    if location.transport == "git":
        return _TimedTCPGitClient(location.host or "", location.port,
                                  read_timeout=read_timeout), None
    if location.transport == "http":
        port = f":{location.port}" if location.port else ""
        password = auth.password.reveal() if auth.password else None
        username = auth.username or location.username
        return HttpGitClient(
            f"{location.scheme}://{location.host}{port}/", username=username,
            password=password if username else None, timeout=http_timeout,
        ), None
    if location.transport == "ssh":
        ssh = SshSession(auth)
        return SSHGitClient(
            location.host or "", location.port, username=auth.username or location.username,
            key_filename=ssh.key_filename, ssh_command=ssh.command,
        ), ssh
    return LocalGitClient(), None


def pick_ref(refs: dict[bytes, bytes], ref: RefSpec, where: str) -> str:
    """The object ``ref`` names among the advertised ``refs`` (a tag's peeled commit where
    the server shows it)."""
    for name in ref.candidates:
        key = name.encode()
        value = refs.get(key + b"^{}") or refs.get(key)
        if value is not None:
            return value.decode()
    if ref.text == "HEAD":
        raise RemoteNotFoundError(f"{where}: the repository has no commits (no HEAD)")
    hint = (" (an abbreviated commit id cannot be looked up remotely: give all 40 hex "
            "digits)" if ref.looks_like_short_sha else "")
    raise RemoteNotFoundError(f"{where}: no branch or tag {ref.text!r} on the remote{hint}")


def lookup_ref(client: GitClient, location: GitLocation, ref: RefSpec, *, where: str,
               conn_id: str | None, protocol_version: int | None) -> str:
    """The commit ``ref`` points at, from the refs alone (no pack asked for)."""
    with translated(where, conn_id=conn_id):
        result = client.get_refs(location.path.encode(), protocol_version=protocol_version,
                                 ref_prefix=ref.prefixes)
    return pick_ref({k: v for k, v in result.refs.items() if v is not None}, ref, where)
