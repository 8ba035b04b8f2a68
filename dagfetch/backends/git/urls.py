"""Git addresses and refs, parsed before anything touches the network.

Accepted (the manifest ``url``)::

    git://host[:port]/path                 git daemon
    git+https://host/path, git+http://...  smart HTTP (credentials from conn_id)
    ssh://[user@]host[:port]/path          SSH (key from conn_id); also git+ssh://
    user@host:path                         scp-like SSH address
    git+file:///path                       a repository on this machine

Credentials never belong in the URL: a password in it is refused, so it cannot end up in
logs, errors or cache metadata. A user name (``git@...``) is fine.

:func:`scp_like_scheme` is the backend's URL form (entry-point group ``dagfetch.url_forms``):
it tells the manifest that ``user@host:path``, written without ``scheme://``, is served by
the ``ssh`` scheme, so such a URL is not taken for a local path.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import attrs

from dagfetch.errors import ConfigError

Transport = Literal["git", "http", "ssh", "file"]

_SCP_LIKE = re.compile(r"^(?:(?P<user>[\w.+-]+)@)?(?P<host>[\w.-]+):(?P<path>(?!//).+)$")
# What the manifest takes for an scp-like address: the user is required, or `host:path` would
# swallow a mistyped `s3:bucket` (which the manifest reports as missing its '//')
_SCP_FORM = re.compile(r"^[\w.-]+@[\w.-]+:")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_HEX = re.compile(r"^[0-9a-fA-F]{7,39}$")
_SCHEMES: dict[str, Transport] = {
    "git": "git",
    "git+https": "http",
    "git+http": "http",
    "https": "http",
    "http": "http",
    "ssh": "ssh",
    "git+ssh": "ssh",
    "git+file": "file",
    "file": "file",
}


@attrs.frozen
class GitLocation:
    """Where a repository lives, split the way dulwich's clients want it."""

    transport: Transport
    path: str  # repository path on the server (or the local path for file)
    host: str | None = None
    port: int | None = None
    username: str | None = None
    scheme: str = "git"  # http or https for the HTTP transport
    scp_like: bool = False  # written user@host:path in the manifest

    @property
    def base_url(self) -> str:
        """The URL a client library is given (never carries credentials)."""
        if self.transport == "http":
            port = f":{self.port}" if self.port else ""
            return f"{self.scheme}://{self.host}{port}{self.path}"
        if self.transport == "file":
            return f"file://{self.path}"
        if self.scp_like:
            user = f"{self.username}@" if self.username else ""
            return f"{user}{self.host}:{self.path}"
        port = f":{self.port}" if self.port else ""
        user = f"{self.username}@" if self.username else ""
        return f"{self.transport}://{user}{self.host}{port}{self.path}"

    @property
    def display(self) -> str:
        """How messages name the repository."""
        return self.base_url


def scp_like_scheme(url: str) -> str | None:
    """A :data:`dagfetch.protocol.UrlForm`: ``user@host:path`` is an SSH address (``ssh``)."""
    return "ssh" if _SCP_FORM.match(url) else None


def parse_location(url: str) -> GitLocation:
    """Parse a manifest URL into a :class:`GitLocation`, or raise ConfigError saying why."""
    if "://" not in url:
        m = _SCP_LIKE.match(url)
        if m is None:
            raise ConfigError(f"{url!r} is not a git URL (use git://, git+https://, ssh://, "
                              "user@host:path or git+file://)")
        return GitLocation("ssh", m["path"], m["host"], None, m["user"], scp_like=True)
    scheme, _, _ = url.partition("://")
    transport = _SCHEMES.get(scheme.lower())
    if transport is None:
        raise ConfigError(f"{scheme}:// is not a git URL scheme (known: "
                          f"{', '.join(sorted(_SCHEMES))})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"not a valid URL: {exc}") from None
    if parts.password:
        raise ConfigError("the URL carries a password; put credentials in a connection "
                          "(conn_id) instead, so they never reach logs or the cache")
    if parts.query or parts.fragment:
        raise ConfigError("a git URL takes no '?query' or '#fragment'; use 'ref' for a "
                          "branch, tag or commit")
    if transport == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URLs name a local path, not host {parts.netloc!r}")
        if not parts.path:
            raise ConfigError("the file URL has no path")
        return GitLocation("file", parts.path)
    if not parts.hostname:
        raise ConfigError("the URL has no host")
    path = parts.path or "/"
    if transport == "http":
        http_scheme = "https" if scheme.lower().endswith("https") else "http"
        return GitLocation("http", path, parts.hostname, port, parts.username, http_scheme)
    return GitLocation(transport, path, parts.hostname, port, parts.username)


@attrs.frozen
class RefSpec:
    """What the manifest's ``ref`` asks for.

    ``commit`` is set for a full sha (no ref lookup needed at all); otherwise ``candidates``
    are the ref names tried in git's own order of precedence (``refs/<name>``, then tags,
    then branches), and ``None`` / ``HEAD`` means the remote's default branch.
    """

    text: str
    commit: str | None = None
    candidates: tuple[str, ...] = ()

    @property
    def looks_like_short_sha(self) -> bool:
        """A ref that is not found but looks like an abbreviated commit gets a hint: the
        remote can only be asked for full ids."""
        return self.commit is None and bool(_HEX.match(self.text))

    @property
    def prefixes(self) -> list[bytes]:
        """ref-prefix arguments for a protocol-v2 ls-refs: only these refs are sent back."""
        return [c.encode() for c in self.candidates]


def parse_ref(ref: str | None) -> RefSpec:
    if ref is None or ref.strip() in ("", "HEAD"):
        return RefSpec("HEAD", candidates=("HEAD",))
    text = ref.strip()
    if FULL_SHA.match(text.lower()):
        return RefSpec(text, commit=text.lower())
    if text.startswith("refs/"):
        return RefSpec(text, candidates=(text,))
    bad = ("..", " ", "~", "^", ":", "\\", "?", "*", "[")
    if any(b in text for b in bad) or text.endswith(("/", ".lock")):
        raise ConfigError(f"{text!r} is not a valid branch, tag or commit")
    return RefSpec(text, candidates=(f"refs/{text}", f"refs/tags/{text}", f"refs/heads/{text}"))
