"""The cache's metadata files: JSON written atomically, read with damage named, and the
shape ``state.json`` must have.

Files are replaced atomically (write to a temporary name, fsync, rename), so a reader never
sees half a file and a crash leaves the old one (and, at worst, the temporary file, which the
next sync or gc of the repository removes).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dagfetch.errors import CacheError


def write_json_atomic(path: Path, data: Any) -> None:
    # dumps, not dump: json.dump streams through the pure-Python encoder, which made writing
    # a 2,000-file version record a tenth of a cold sync
    write_text_atomic(path, json.dumps(data, separators=(",", ":"), sort_keys=True))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (JSON its caller encoded) to ``path`` atomically, flushed to disk."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file ``.<name>.*`` beside it,
    renamed over it, removed if anything fails (a full disk leaves no half file). With
    ``durable``, flushed to disk before the rename; a file that is only a cache of what can
    be asked again may skip that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UnreadableMetadata(CacheError):
    """A metadata file that is not JSON, or not of the shape dagfetch writes."""


# state.json's keys and the types they must have; a value of another type is dropped
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "current": (str,),
    "last_check_at": (str,),
    "last_success_at": (str,),
    "last_change_at": (str,),
    "last_error": (dict,),
    "retired": (dict,),
    "became_current": (dict,),
}


def clean_state(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` with every value of a known key that has the wrong type dropped (and the
    entries of the time maps that are not numbers); the names of what was dropped."""
    clean: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in data.items():
        types = _STATE_TYPES.get(key)
        if value is None or types is None:
            clean[key] = value
        elif not isinstance(value, types):
            dropped.append(key)
        elif key in ("retired", "became_current") and isinstance(value, dict):
            times = {
                str(k): float(v)
                for k, v in value.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            if len(times) != len(value):
                dropped.append(f"{key} (some entries)")
            clean[key] = times
        elif key == "last_error" and isinstance(value, dict):
            clean[key] = {str(k): str(v) for k, v in value.items()}
        else:
            clean[key] = value
    return clean, dropped


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise UnreadableMetadata(
            f"{path}: corrupt metadata ({why}); remove it and sync again"
        ) from None
