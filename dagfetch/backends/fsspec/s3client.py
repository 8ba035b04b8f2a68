"""s3fs's botocore client, made cheaper per request without changing what it sends or returns.

A small object's GET costs the client about as much CPU as moto spends answering it, and
two parts of that were work repeated identically for every request:

- **timestamps**: botocore parses each GET's ``Last-Modified`` header and each listed key's
  ``LastModified`` with dateutil (:mod:`~dagfetch.backends.fsspec.timestamps` does it by the
  standard library). The parser doing it is made afresh for every response, from the
  *endpoint's* parser factory; the client's own ``_response_parser`` is never used for a
  response, so giving only that one the fast timestamps (as before) changed nothing;
- **the User-Agent header**: built twice per request from some twenty components, each
  sanitized character by character, although for one client it depends only on the
  request's feature ids (retry mode, checksums, ...). It is now built once per set of
  feature ids and reused; the header sent is the same string.

Both reach into botocore's private attributes: a client without them (another botocore) is
left as it is, and works as before, only slower.
"""

from __future__ import annotations

from typing import Any

from dagfetch.backends.fsspec.timestamps import FastTimestamps


class FastParsers:
    """A botocore response-parser factory giving each parser it makes
    :class:`FastTimestamps` over the parser's own timestamp parser."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self._fast: dict[Any, FastTimestamps] = {}  # one wrapper per fallback, not per response

    def create_parser(self, protocol_name: str) -> Any:
        parser = self.factory.create_parser(protocol_name)
        current = getattr(parser, "_timestamp_parser", None)
        if current is not None and not isinstance(current, FastTimestamps):
            fast = self._fast.get(current)
            if fast is None:
                fast = self._fast[current] = FastTimestamps(current)
            parser._timestamp_parser = fast
        return parser

    def __getattr__(self, name: str) -> Any:
        # anything else a caller asks of the factory (set_parser_defaults, ...) is its own;
        # "factory" itself is not (a copy being built has none yet: no endless recursion)
        if name == "factory":
            raise AttributeError(name)
        return getattr(self.factory, name)


def _fast_timestamps(client: Any) -> None:
    endpoint: Any = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if factory is None or isinstance(factory, FastParsers) or not hasattr(
        factory, "create_parser"
    ):
        return
    endpoint._response_parser_factory = FastParsers(factory)


def _reused_user_agent(client: Any) -> None:
    creator: Any = getattr(client, "_user_agent_creator", None)
    build = getattr(creator, "to_string", None)
    if build is None or getattr(build, "reuses", False):
        return
    try:  # the request's feature ids live in botocore's request context
        from botocore.context import get_context  # type: ignore[import-untyped]
    except ImportError:
        return  # a botocore without request contexts: its header is left to it
    built: dict[frozenset[str], str] = {}

    def to_string() -> str:
        context = get_context()
        features = frozenset(context.features) if context is not None else frozenset()
        header = built.get(features)
        if header is None:
            header = built[features] = build()
        return header

    to_string.reuses = True  # type: ignore[attr-defined]
    # an instance attribute: the client's own call and its request-created handler (a bound
    # method of the same creator) both look it up on the instance first
    creator.to_string = to_string


def speed_up(client: Any) -> None:
    """Make ``client`` (s3fs's ``fs.s3``) parse timestamps fast and reuse its User-Agent
    header; a second call, or a client lacking what is changed, leaves it as it is."""
    if client is None:
        return
    _fast_timestamps(client)
    _reused_user_agent(client)

