"""Listing an HTTP(S) repository: an HTML index page per folder, links to its files.

A folder is a URL ending in ``/`` whose page links (``<a href>``) to its files and subfolders.
Links leaving the folder (parents, other hosts), links with a query or fragment (an Apache
autoindex's sort links) are ignored. Each file link may carry its change data, so a check
costs one request per folder and none per file::

    <a href="dag_a.py" data-size="120" data-etag='"5f2b-78"'
       data-last-modified="Mon, 23 Nov 2026 09:00:00 GMT">dag_a.py</a>

A file link without ``data-etag`` / ``data-last-modified`` costs one HEAD request, which
must answer with an ``ETag`` or a ``Last-Modified`` header (and should give
``Content-Length``): without one of them dagfetch cannot tell when a file changes, and says so.

Index pages are fetched conditionally: :class:`IndexCache` keeps each page's ``ETag`` /
``Last-Modified`` and body in the backend's private folder, sends ``If-None-Match`` /
``If-Modified-Since``, and a ``304 Not Modified`` reuses the stored page, so a check of an
unchanged repository transfers no page bodies.

:func:`list_http` is the whole listing as the fsspec backend runs it: requests through fsspec's
HTTP session (its headers, auth, SSL settings), each retried by the backend's policy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from dagfetch.backends.fsspec.downloads import RetryPolicy
from dagfetch.errors import FetchError, LimitExceeded, RemoteNotFoundError
from dagfetch.redact import redact_url

MAX_FOLDERS = 10_000  # a loop of links between index pages must end


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            found = {k.lower(): v for k, v in attrs if v is not None}
            if "href" in found:
                self.links.append(found)


class HttpStatusError(Exception):
    """An HTTP answer that is not a success, with its status (read by the retry policy)."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status} from {redact_url(url)}")


Request = Callable[[str, str], Awaitable[tuple[int, dict[str, str], str]]]


class IndexCache:
    """Index pages seen before, with their validators, for conditional GETs. ``path`` None
    (no private folder) keeps them for this process only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pages: dict[str, dict[str, str]] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}  # absent or damaged: start again, it only costs full GETs
            if isinstance(loaded, dict):
                self.pages = {k: v for k, v in loaded.items() if isinstance(v, dict)}
        self.seen: dict[str, dict[str, str]] = {}

    # pages are keyed by the redacted URL: a password written in the URL stays off the disk
    def conditional_headers(self, url: str) -> dict[str, str]:
        page = self.pages.get(redact_url(url), {})
        headers = {}
        if page.get("etag"):
            headers["If-None-Match"] = page["etag"]
        if page.get("last_modified"):
            headers["If-Modified-Since"] = page["last_modified"]
        return headers

    def not_modified(self, url: str) -> str | None:
        """The stored body of a page the server answered 304 for."""
        page = self.pages.get(redact_url(url))
        if page is None:
            return None
        self.seen[redact_url(url)] = page
        return page["body"]

    def remember(self, url: str, headers: dict[str, str], body: str) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("etag") or lower.get("last-modified"):
            self.seen[redact_url(url)] = {"etag": lower.get("etag", ""),
                              "last_modified": lower.get("last-modified", ""), "body": body}

    def save(self) -> None:
        """Keep the pages of this listing only (folders that went away are dropped)."""
        if self.path is None or self.seen == self.pages:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.seen), encoding="utf-8")
        tmp.replace(self.path)


def _info_from_headers(headers: dict[str, str]) -> dict[str, Any]:
    lower = {k.lower(): v for k, v in headers.items()}
    info: dict[str, Any] = {}
    if lower.get("etag"):
        info["etag"] = lower["etag"]
    if lower.get("last-modified"):
        info["last_modified"] = lower["last-modified"]
    if lower.get("content-length", "").isdigit() and "content-encoding" not in lower:
        info["size"] = int(lower["content-length"])
    return info


async def list_index(
    root: str, request: Request, *, concurrency: int, max_folders: int = MAX_FOLDERS,
    max_depth: int | None = None, field: str = "limits",
) -> dict[str, dict[str, Any]]:
    """Relative path -> info (``size``, ``etag``, ``last_modified``) for every file under the
    folder URL ``root`` (ending in ``/``). A folder loop (``a/`` linking ``a/a/`` ...) ends
    at ``max_depth`` levels or ``max_folders`` pages, whichever comes first; ``field`` is
    the manifest table setting both, for the error."""
    files: dict[str, dict[str, Any]] = {}
    pending = [root]
    seen = {root}
    while pending:
        folder = pending.pop()
        status, _, body = await request("GET", folder)
        if status == 404:
            if folder == root:
                raise RemoteNotFoundError(f"{redact_url(root)}: not found (HTTP 404)")
            continue  # a stale link to a folder that went away
        if status >= 400:
            raise HttpStatusError(status, folder)
        parser = _Links()
        parser.feed(body)
        for link in parser.links:
            href = link["href"]
            target = urljoin(folder, href)
            parts = urlsplit(target)
            if parts.query or parts.fragment or "#" in href:
                continue
            if not target.startswith(root) or target == root or len(target) <= len(folder):
                continue  # parents, siblings, other hosts
            if target.endswith("/"):
                if target not in seen:
                    rel_folder = unquote(target[len(root):]).rstrip("/")
                    if len(seen) >= max_folders:
                        raise LimitExceeded(
                            rel_folder, f"more than {max_folders} folders listed",
                            f"{field}.max_http_folders")
                    depth = rel_folder.count("/") + 1
                    if max_depth is not None and depth >= max_depth:
                        raise LimitExceeded(
                            rel_folder, f"a folder {depth} levels deep: its files would be "
                            f"more than max_path_depth = {max_depth} levels deep",
                            f"{field}.max_path_depth")
                    seen.add(target)
                    pending.append(target)
                continue
            rel = unquote(target[len(root):])
            info: dict[str, Any] = {}
            if link.get("data-size", "").isdigit():
                info["size"] = int(link["data-size"])
            if link.get("data-etag"):
                info["etag"] = link["data-etag"]
            if link.get("data-last-modified"):
                info["last_modified"] = link["data-last-modified"]
            files[rel] = info
    await _head_where_needed(root, files, request, concurrency)
    return files


async def _head_where_needed(
    root: str, files: dict[str, dict[str, Any]], request: Request, concurrency: int
) -> None:
    bare = [r for r, info in files.items() if not (info.get("etag") or info.get("last_modified"))]
    if not bare:
        return
    gate = asyncio.Semaphore(concurrency)

    async def head(rel: str) -> None:
        url = file_url(root, rel)
        async with gate:
            status, headers, _ = await request("HEAD", url)
        if status >= 400:
            raise HttpStatusError(status, url)
        info = {**_info_from_headers(headers), **files[rel]}
        if not (info.get("etag") or info.get("last_modified")):
            raise FetchError(
                f"{redact_url(url)}: the server sends neither ETag nor Last-Modified, so "
                "dagfetch cannot tell when it changes (see docs/backends/http.md)"
            )
        files[rel] = info

    await asyncio.gather(*(head(rel) for rel in bare))


def file_url(root: str, rel: str) -> str:
    return root + quote(rel, safe="/")


async def list_http(
    fs: Any, root: str, *, work_dir: Path | None, retry: RetryPolicy, concurrency: int,
    max_folders: int = MAX_FOLDERS, max_depth: int | None = None,
    max_page_bytes: int | None = None, field: str = "limits",
) -> dict[str, dict[str, Any]]:
    """List the folder URL ``root`` through the HTTP file system ``fs``, index pages fetched
    conditionally against those kept in ``work_dir`` (the repository's private folder).
    An index page longer than ``max_page_bytes`` (an endless body) is refused."""
    session = await fs.set_session()
    request_kwargs = dict(fs.kwargs)
    pages = IndexCache(work_dir / "http-index.json" if work_dir is not None else None)

    async def request(method: str, url: str) -> tuple[int, dict[str, str], str]:
        async def once() -> tuple[int, dict[str, str], str]:
            kwargs = dict(request_kwargs)
            if method == "GET":
                conditional = pages.conditional_headers(url)
                kwargs["headers"] = {**kwargs.get("headers", {}), **conditional}
            async with session.request(method, url, **kwargs) as response:
                if method == "GET" and response.status == 304:
                    cached = pages.not_modified(url)
                    if cached is not None:
                        return 200, dict(response.headers), cached
                body = await _read_page(response, url, max_page_bytes, field) \
                    if method == "GET" else ""
                if response.status in (408, 429) or response.status >= 500:
                    raise HttpStatusError(response.status, url)
                if method == "GET" and response.status == 200:
                    pages.remember(url, dict(response.headers), body)
                return response.status, dict(response.headers), body

        return await retry.run(once)

    found = await list_index(root, request, concurrency=concurrency, max_folders=max_folders,
                             max_depth=max_depth, field=field)
    pages.save()
    return found


async def _read_page(response: Any, url: str, limit: int | None, field: str) -> str:
    """The page's text, read no further than ``limit`` bytes."""
    if limit is None:
        return str(await response.text())
    chunks: list[bytes] = []
    total = 0
    while chunk := await response.content.read(1 << 16):
        total += len(chunk)
        if total > limit:
            raise LimitExceeded(redact_url(url), f"an index page of more than {limit} bytes",
                                f"{field}.max_file_bytes")
        chunks.append(chunk)
    return b"".join(chunks).decode(response.charset or "utf-8", "replace")
