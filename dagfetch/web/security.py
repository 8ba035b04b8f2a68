"""What keeps the web server safe to point at untrusted repositories.

- **Headers on every answer**: a strict Content-Security-Policy (scripts, styles and images
  from this server only; no inline script or style, no frames, no plugins), ``nosniff``,
  ``no-referrer`` and no framing. DAG ids, task ids, file names and contents come from the
  repositories: the templates escape everything (Jinja autoescape), and the picture's script
  writes text with ``textContent`` only.
- **No secret in an answer**: every page and JSON answer passes through
  :func:`dagfetch.redact.mask`, which knows every secret the process resolved (the web
  server resolves the manifest's connections at start-up so that it knows them all).
- **Optional bearer tokens** (``[web] auth_conn_id``): every route but the hooks (which carry
  their own credentials), the login form and the static assets wants
  ``Authorization: Bearer <token>`` or the cookie the login form sets. A browser without the
  token is sent to the login form; an API client gets 401.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dagfetch.connections import Secret
from dagfetch.redact import mask

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
TOKEN_COOKIE = "dagfetch_token"  # noqa: S105 - the name of the cookie, not a secret
#: Paths (below the root path) that answer without the bearer token.
OPEN_PREFIXES = ("/api/hooks/", "/static/", "/assets/", "/login", "/healthz", "/favicon.ico")


class MaskedHTMLResponse(HTMLResponse):
    def render(self, content: Any) -> bytes:
        return mask(content if isinstance(content, str) else str(content)).encode("utf-8")


class MaskedJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return mask(text).encode("utf-8")


def route_path(scope: Scope) -> str:
    """The request's path below the root path the app is served under."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in {name for name, _ in SECURITY_HEADERS}]
                message["headers"] = headers + list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenCheck:
    """Whether a request carries one of the accepted tokens (constant-time comparisons)."""

    def __init__(self, tokens: Sequence[Secret]) -> None:
        self._tokens = [token.reveal().encode() for token in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def valid(self, presented: str | None) -> bool:
        if not presented:
            return False
        given = presented.encode("latin-1", errors="replace")
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(token, given)
        return found

    def presented(self, scope: Scope) -> str | None:
        """The token a request carries: its bearer token, else the login cookie."""
        headers: dict[str, str] = {k.decode("latin-1").lower(): v.decode("latin-1")
                                   for k, v in scope.get("headers", [])}
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE and value:
                return str(value)
        return None


class RequireToken:
    """Refuses requests without a valid token, when tokens are configured."""

    def __init__(self, app: ASGIApp, check: TokenCheck) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.check.enabled:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path.startswith(OPEN_PREFIXES) or self.check.valid(self.check.presented(scope)):
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/") or path in ("/metrics", "/openapi.json"):
            response: Any = MaskedJSONResponse(
                {"detail": "this server wants a bearer token (Authorization: Bearer ...)"},
                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        else:
            target = scope.get("root_path", "") + path
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            login = f"{scope.get('root_path', '')}/login?next={quote(target, safe='')}"
            response = MaskedHTMLResponse("", status_code=303, headers={"Location": login})
        await response(scope, receive, send)


def safe_next(target: str, root_path: str) -> str:
    """Where the login form may send a browser back to: a path of this app, nothing else
    (no other host, no scheme, no protocol-relative ``//host``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return root_path + "/"
    if root_path and not (target == root_path or target.startswith(root_path + "/")):
        return root_path + "/"
    return target
