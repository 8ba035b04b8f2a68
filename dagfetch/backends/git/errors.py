"""Every dulwich error, mapped to a dagfetch error in one place.

dulwich has no common base for its exceptions (and raises plain ``KeyError``,
``AssertionError`` and ``OSError`` too), so the git backend runs each dulwich call inside
:func:`translated` and nothing else ever reaches the core. ``tests/test_backend_git_errors.py``
fails if a dulwich exception class is missing from :func:`dulwich_errors`.

What the mapping says, in the terms a user acts on::

    remote       the server refused the conversation             -> FetchError
    dropped      the server hung up or broke off                  -> ConnectionDropped, or
                 (its last words: "not our ref")                  -> WantRefused
    auth         credentials missing or wrong                    -> FetchError (names conn_id)
    missing      no repository at that URL                       -> RemoteNotFoundError
    corrupt      bytes that fail git's checks                    -> CorruptData / StoreCorrupt
    config       an address or option dagfetch cannot use        -> ConfigError
    local        a worktree/index/commit-side error we never expect while fetching

The typed errors of the git backend, so the fetcher branches on types, never on text::

    dagfetch.errors.FetchError
    ├── WantRefused          the server will not send an object asked for by its id
    ├── ConnectionDropped    the server hung up or broke off while negotiating or sending
    ├── ObjectNotReceived    an object the fetch needed did not arrive
    └── CorruptData          bytes that fail git's checks (the store is rebuilt once)
        └── StoreCorrupt     ... in the local object store

Messages are built from the redacted location and passed through :func:`mask`.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from dagfetch.errors import ConfigError, DagfetchError, FetchError, RemoteNotFoundError
from dagfetch.redact import mask

Kind = Literal["remote", "dropped", "auth", "missing", "corrupt", "config", "local"]

@functools.cache
def dulwich_errors() -> dict[type[BaseException], tuple[Kind, str]]:
    """Every exception class dulwich defines in the modules a fetch loads. Listed one by one,
    not by base class, so a new dulwich class shows up as a failing test, not a surprise.
    Built on the first error: the modules defining some of them (LFS, patches, filters, the
    index) are not otherwise loaded by a no-change sync, and cost a third of its dulwich."""
    from dulwich import client as _client
    from dulwich import errors as _errors
    from dulwich import file as _file
    from dulwich import filters as _filters
    from dulwich import index as _index
    from dulwich import lfs as _lfs
    from dulwich import object_store as _object_store
    from dulwich import objects as _objects
    from dulwich import pack as _pack
    from dulwich import patch as _patch
    from dulwich import refs as _refs
    from dulwich import repo as _repo
    from dulwich import wildmatch as _wildmatch
    from dulwich.bundle_uri import BundleURIError

    return {
        _errors.ChecksumMismatch: ("corrupt", "checksum mismatch"),
        _errors.WrongObjectException: ("corrupt", "an object has the wrong type"),
        _errors.NotCommitError: ("corrupt", "expected a commit"),
        _errors.NotTreeError: ("corrupt", "expected a tree"),
        _errors.NotTagError: ("corrupt", "expected a tag"),
        _errors.NotBlobError: ("corrupt", "expected a blob"),
        _errors.MissingCommitError: ("corrupt", "a commit is missing"),
        _errors.ObjectMissing: ("corrupt", "an object is missing"),
        _errors.ApplyDeltaError: ("corrupt", "a pack delta does not apply"),
        _errors.NotGitRepository: ("missing", "no git repository there"),
        _errors.GitProtocolError: ("dropped", "the server broke off"),
        _errors.SendPackError: ("remote", "push refused"),
        _errors.HangupException: ("dropped", "the server hung up"),
        _errors.UnexpectedCommandError: ("remote", "unexpected reply from the server"),
        _errors.FileFormatException: ("corrupt", "a file is not in git's format"),
        _errors.PackedRefsException: ("corrupt", "packed-refs is not in git's format"),
        _errors.ObjectFormatException: ("corrupt", "an object is malformed"),
        _errors.NoIndexPresent: ("local", "no index"),
        _errors.CommitError: ("local", "commit failed"),
        _errors.RefFormatError: ("config", "not a valid ref name"),
        _errors.HookError: ("local", "a hook failed"),
        _errors.WorkingTreeModifiedError: ("local", "the working tree was modified"),
        _client.InvalidWants: ("missing", "the server does not have the requested commit"),
        _client.HTTPUnauthorized: ("auth", "the server asks for credentials (HTTP 401)"),
        _client.HTTPProxyUnauthorized: ("auth", "the proxy asks for credentials (HTTP 407)"),
        _client.StrangeHostname: ("config", "refusing a host name that starts with '-'"),
        _client.TransportNotAllowed: ("config", "this transport is not allowed"),
        _file.FileLocked: ("local", "a file of the local object store is locked"),
        _pack.UnresolvedDeltas: ("corrupt", "a pack has unresolved deltas"),
        _pack.DeltaCycle: ("corrupt", "a pack has a delta cycle"),
        _pack.PackFileDisappeared: ("corrupt", "a pack file disappeared"),
        _object_store.PackInputTooLarge: ("remote", "the pack is larger than allowed"),
        _object_store.MaxTreeDepthExceeded: ("corrupt", "trees nest too deeply"),
        _objects.EmptyFileException: ("corrupt", "an object file is empty"),
        _objects.SubmoduleEncountered: ("local", "a submodule was met"),
        _repo.InvalidUserIdentity: ("local", "invalid user identity"),
        _repo.DefaultIdentityNotFound: ("local", "no user identity"),
        _repo.UnsupportedVersion: ("corrupt", "unsupported repository format version"),
        _repo.UnsupportedExtension: ("corrupt", "unsupported repository extension"),
        _repo.InvalidWorktreeConfiguration: ("local", "invalid worktree configuration"),
        _refs.SymrefLoop: ("corrupt", "symbolic refs form a loop"),
        _lfs.LFSError: ("remote", "LFS request failed"),
        _index.UnmergedEntries: ("local", "unmerged index entries"),
        _index.UnsupportedIndexFormat: ("local", "unsupported index format"),
        _index.InvalidPathError: ("local", "invalid path in the index"),
        BundleURIError: ("remote", "bundle URI failed"),
        _filters.FilterError: ("local", "a content filter failed"),
        _patch.PatchApplicationFailure: ("local", "a patch does not apply"),
        _patch.DiffAlgorithmNotAvailable: ("local", "diff algorithm not available"),
        _wildmatch.MalformedPattern: ("config", "malformed pattern"),
    }


class WantRefused(FetchError):
    """The server refused an object asked for by its id (git's ``not our ref``): a protocol
    v0/v1 server without ``uploadpack.allowReachableSHA1InWant`` sends only ref tips, and
    any server refuses a commit it does not have."""


class ConnectionDropped(FetchError):
    """The server hung up or broke off the conversation (a protocol error, a broken pipe)
    while negotiating or sending the pack. git's upload-pack does this, without a word on
    the wire, when asked for an object it does not have."""


class ObjectNotReceived(FetchError):
    """An object the fetch needed is not there after it (the server did not send it)."""


class CorruptData(FetchError):
    """Git data failed git's checks: a damaged pack from the server, or a damaged local
    object store. The fetcher rebuilds its store and tries once more before giving up."""


class StoreCorrupt(CorruptData):
    """The local object store fails git's checks."""


def classify(exc: BaseException) -> tuple[Kind, str] | None:
    """The most specific entry of :func:`dulwich_errors` for ``exc``, if it is dulwich's."""
    if not any(cls.__module__.startswith("dulwich") for cls in type(exc).__mro__):
        return None  # and dulwich's error modules stay unimported
    table = dulwich_errors()
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def __getattr__(name: str) -> Any:
    if name == "DULWICH_ERRORS":  # the table, as a name, for readers and tests
        return dulwich_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def translate(exc: BaseException, where: str, *, conn_id: str | None = None,
              local: bool = False) -> DagfetchError:
    """A dagfetch error for ``exc`` raised while working on ``where`` (a redacted location,
    plus ref). ``local`` says the error came from reading the local object store."""
    if isinstance(exc, DagfetchError):
        return exc
    detail = mask(str(exc)).strip()
    found = classify(exc)
    if found is not None:
        kind, what = found
        text = f"{where}: {what}" + (f" ({detail})" if detail and detail != "None" else "")
        if kind == "auth":
            how = (f"check the credentials of connection {conn_id!r}" if conn_id
                   else "set conn_id to a connection with credentials")
            return FetchError(f"{text}; {how}")
        if kind == "missing":
            return RemoteNotFoundError(text)
        if kind == "config":
            return ConfigError(text)
        if kind == "dropped":
            # the one condition git reports only in words: its ERR line or its stderr
            if "not our ref" in detail:
                return WantRefused(f"{where}: the server refuses to send an object by its id "
                                   f"({detail})")
            return ConnectionDropped(text)
        if kind == "corrupt":
            if local:
                return StoreCorrupt(f"{text}; the local object store is damaged")
            return CorruptData(f"{where}: the data received is damaged: {what}"
                               + (f" ({detail})" if detail and detail != "None" else ""))
        return FetchError(text)
    if isinstance(exc, zlib.error):
        if local:
            return StoreCorrupt(f"{where}: the local object store is damaged ({detail})")
        return CorruptData(f"{where}: the data received is damaged ({detail})")
    if isinstance(exc, KeyError):
        # dulwich's object store answers a missing object with a bare KeyError
        if local:
            return StoreCorrupt(f"{where}: object {detail} is missing")
        return ObjectNotReceived(f"{where}: object {detail} is missing")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return FetchError(f"{where}: cannot reach the server ({type(exc).__name__}: {detail})")
    if isinstance(exc, OSError):
        return FetchError(f"{where}: {type(exc).__name__}: {detail}")
    if local:
        return StoreCorrupt(f"{where}: the local object store is damaged "
                            f"({type(exc).__name__}: {detail})")
    # ValueError / AssertionError: dulwich's way of saying the server sent nonsense
    return FetchError(f"{where}: unexpected {type(exc).__name__} from git: {detail}")


@contextmanager
def translated(where: str, *, conn_id: str | None = None, local: bool = False) -> Iterator[None]:
    """Run a block of dulwich calls; whatever it raises leaves as a dagfetch error."""
    try:
        yield
    except DagfetchError:
        raise
    except Exception as exc:
        raise translate(exc, where, conn_id=conn_id, local=local) from None
