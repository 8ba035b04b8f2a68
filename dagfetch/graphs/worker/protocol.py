"""The data-only wire format between the extraction worker and the syncing process.

Every message is a JSON object, framed as a 4-byte big-endian length and that many bytes of
UTF-8 JSON. Nothing is ever unpickled: the syncing process only parses JSON (bounded in size)
and checks it against the shape below, so a DAG file that writes crafted bytes on any
descriptor can at worst make its own file an import error.

Messages:

- ``{"kind": "ready", "duplicate_message"?: str}``: the worker loaded its extractors and
  preloaded their modules; ``duplicate_message`` is an extractor's wording of a ``dag_id``
  defined in two files (see :func:`duplicate_text`), sent before any DAG code ran;
- ``{"kind": "fatal", "error": str}``: it could not (bad extractor, failed preload);
- ``{"kind": "result", "file": str, "graphs": [graph JSON...], "error": str | null}``:
  what one DAG file gave; exactly one per file the syncing process asked for.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import attrs

from dagfetch.graphs.errors import InvalidGraphError
from dagfetch.graphs.model import Graph

HEADER = struct.Struct(">I")
#: a message larger than this is refused unread (a DAG of 10,000 tasks is about 1 MB)
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
INVALID = "worker sent an invalid message"
TIMED_OUT = "timed out"
DIED = "the parser process"


def is_worker_failure(error: str | None) -> bool:
    """An import error the worker reported about the file's process (a time-out, a death, an
    invalid message) rather than one the file raised: worth trying again next time."""
    return error is not None and error.startswith((INVALID, TIMED_OUT, DIED))


class ProtocolError(Exception):
    """Bytes that are not a valid message of this protocol."""


#: the placeholders of a ``duplicate_message``, filled by plain replacement (never ``format``)
DUPLICATE_FIELDS = ("{dag_id}", "{file}", "{other}")
MAX_DUPLICATE_MESSAGE = 2000


def duplicate_text(template: str, dag_id: str, file: str, other: str) -> str:
    """``template`` with its placeholders filled in one pass (a dag_id holding ``{file}``
    stays as it is)."""
    values = dict(zip(DUPLICATE_FIELDS, (dag_id, file, other), strict=True))
    return re.sub("|".join(re.escape(f) for f in DUPLICATE_FIELDS),
                  lambda match: values[match.group(0)], template)


def ready_duplicate_message(message: dict[str, Any]) -> str | None:
    """The ``duplicate_message`` of a ``ready`` message, checked."""
    text = message.get("duplicate_message")
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > MAX_DUPLICATE_MESSAGE:
        raise ProtocolError("a ready message whose duplicate_message is not a short string")
    return text


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(body)} bytes is over the limit of "
                            f"{MAX_MESSAGE_BYTES} bytes")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise ProtocolError("not a JSON object with a string 'kind'")
    return message


class FrameReader:
    """Turns a byte stream into messages; refuses an oversized frame before buffering it."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_bytes

    @property
    def pending(self) -> int:
        """Bytes received that are not a complete message yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            if size > self._max:
                raise ProtocolError(f"a message of {size} bytes is over the limit of "
                                    f"{self._max} bytes")
            if len(self._buffer) < HEADER.size + size:
                break
            body = bytes(self._buffer[HEADER.size:HEADER.size + size])
            del self._buffer[:HEADER.size + size]
            messages.append(decode_body(body))
        return messages


@attrs.frozen
class FileResult:
    """One DAG file's outcome, checked: graphs valid, or an import error."""

    file: str
    graphs: tuple[Graph, ...]
    error: str | None


def parse_result(message: dict[str, Any], expected_file: str) -> FileResult:
    """Check a ``result`` message for ``expected_file``; any other shape is a ProtocolError."""
    if message.get("kind") != "result":
        raise ProtocolError(f"expected a result, got {str(message.get('kind'))[:40]!r}")
    if message.get("file") != expected_file:
        raise ProtocolError("a result for another file than the one being parsed")
    if set(message) != {"kind", "file", "graphs", "error"}:
        raise ProtocolError("a result with unexpected or missing fields")
    error, graphs = message["error"], message["graphs"]
    if error is not None and not isinstance(error, str):
        raise ProtocolError("a result whose error is not a string")
    if not isinstance(graphs, list) or (error is not None and graphs):
        raise ProtocolError("a result whose graphs are not a list (or come with an error)")
    try:
        parsed = tuple(Graph.from_json(data) for data in graphs)
    except (InvalidGraphError, TypeError, KeyError, ValueError, AttributeError) as exc:
        # the file defined something the store cannot hold: that is the file's import error
        return FileResult(expected_file, (), str(exc))
    return FileResult(expected_file, parsed, error)
