"""Refresh on push: ``POST /api/hooks/{repo_id}`` starts a sync of that repository.

A request is let in the way the sending forge signs it, against the secret of the
repository's ``web.hook_conn_id`` connection:

- GitHub (and Gitea, Forgejo): ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body>``;
- GitLab: ``X-Gitlab-Token: <secret>``;
- anything else (a CI job, curl): ``Authorization: Bearer <secret>``.

Every comparison is constant-time (:func:`hmac.compare_digest`). A request with no valid
credential, or for a repository without a hook secret (or not in the manifest), changes
nothing and is answered 401, the same way in each case, so the answer does not tell which
repositories exist.

Bursts coalesce (:class:`Coalescer`): the first push schedules a sync ``hook_delay`` seconds
later, and pushes until it starts join it; a push while it runs queues one more sync after
it (that push may have come after the sync listed the remote), and further pushes join that
one. So ten pushes in a second cause one sync. Each server process coalesces its own hooks;
syncs of one repository from several processes take the cache's lock in turn, and the later
ones find nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Mapping

from dagfetch.connections import ConnectionResolver, Secret
from dagfetch.errors import ConfigError
from dagfetch.manifest import Manifest
from dagfetch.redact import get_logger
from dagfetch.web.settings import connection_secrets, hook_conn_ids, resolve_secrets

log = get_logger(__name__)

#: The largest hook body read (GitHub caps its payloads at 25 MB; a push is far smaller).
MAX_BODY = 5 * 1024 * 1024


def is_signed(secrets: list[Secret], headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request carries a valid GitHub signature, GitLab token or bearer token
    for one of ``secrets``. Every given credential is compared with every secret, in
    constant time, so the time taken says nothing about how close a guess was."""
    github = headers.get("x-hub-signature-256")
    gitlab = headers.get("x-gitlab-token")
    authorization = headers.get("authorization", "")
    scheme, _, bearer = authorization.partition(" ")
    presented_bearer = bearer.strip() if scheme.lower() == "bearer" and bearer.strip() else None
    valid = False
    for secret in secrets:
        key = secret.reveal().encode()
        if github is not None:
            digest = hmac.new(key, body, hashlib.sha256).hexdigest()
            valid |= hmac.compare_digest(f"sha256={digest}".encode(), _raw(github))
        if gitlab is not None:
            valid |= hmac.compare_digest(key, _raw(gitlab))
        if presented_bearer is not None:
            valid |= hmac.compare_digest(key, _raw(presented_bearer))
    return valid


def _raw(header: str) -> bytes:
    # header values arrive decoded as latin-1 (ASGI): the same bytes back
    return header.encode("latin-1", errors="replace")


class Coalescer:
    """Turns bursts of requests for one repository into as few syncs as keep it fresh."""

    def __init__(self, run: Callable[[str], object], delay: float) -> None:
        self._run = run
        self._delay = delay
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._state: dict[str, str] = {}  # repo_id -> "scheduled" | "running" | "again"
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False

    def request(self, repo_id: str) -> str:
        """Ask for a sync: ``scheduled`` (one starts after the delay), ``joined`` (one was
        about to start, or already queued) or ``queued`` (one runs; another follows it)."""
        with self._lock:
            state = self._state.get(repo_id)
            if state is None:
                self._schedule(repo_id)
                return "scheduled"
            if state == "running":
                self._state[repo_id] = "again"
                return "queued"
            return "joined"

    def _schedule(self, repo_id: str) -> None:  # with the lock held
        if self._closed:
            return
        self._state[repo_id] = "scheduled"
        timer = threading.Timer(self._delay, self._start, args=(repo_id,))
        timer.daemon = True
        self._timers[repo_id] = timer
        timer.start()

    def _start(self, repo_id: str) -> None:
        with self._lock:
            self._timers.pop(repo_id, None)
            if self._closed:
                self._state.pop(repo_id, None)
                self._idle.notify_all()
                return
            self._state[repo_id] = "running"
        try:
            self._run(repo_id)
        except Exception:  # the next push must still be able to sync
            log.exception("%s: the sync a hook started failed", repo_id)
        finally:
            with self._lock:
                if self._state.get(repo_id) == "again":
                    self._schedule(repo_id)
                else:
                    self._state.pop(repo_id, None)
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no sync is scheduled or running; whether that happened in time."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._state, timeout)

    def close(self) -> None:
        """Cancel scheduled syncs (a running one finishes)."""
        with self._lock:
            self._closed = True
            for repo_id, timer in list(self._timers.items()):
                timer.cancel()
                self._state.pop(repo_id, None)
            self._timers.clear()
            self._idle.notify_all()


class HookService:
    """The hook of every repository that has a ``web.hook_conn_id``."""

    def __init__(self, manifest: Manifest, connections: ConnectionResolver,
                 run: Callable[[str], object], delay: float) -> None:
        self.manifest = manifest
        self.connections = connections
        self.conn_ids = dict(hook_conn_ids(manifest))
        for repo_id, conn_id in self.conn_ids.items():  # a missing secret fails at start-up
            resolve_secrets(connections, conn_id, f"dag_repositories.{repo_id}.web.hook_conn_id",
                            manifest.source)
        self.coalescer = Coalescer(run, delay)

    def secrets(self, repo_id: str) -> list[Secret]:
        """The repository's hook secrets, read from its connection now (so a rotated secret
        takes effect without a restart); none when it has no hook."""
        conn_id = self.conn_ids.get(repo_id)
        if conn_id is None:
            return []
        try:
            return connection_secrets(self.connections.resolve(conn_id))
        except ConfigError as exc:
            log.warning("%s: hook connection %r cannot be read: %s", repo_id, conn_id, exc)
            return []

    def accepts(self, repo_id: str, headers: Mapping[str, str], body: bytes) -> bool:
        secrets = self.secrets(repo_id)
        return bool(secrets) and is_signed(secrets, headers, body)

    def close(self) -> None:
        self.coalescer.close()
