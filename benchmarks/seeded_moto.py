"""moto_server with buckets of generated objects written straight into its backend before it
listens: ``python -m benchmarks.seeded_moto PORT BUCKET:PREFIX:COUNT:SIZE ...``.

A PUT through moto's HTTP front costs it a few milliseconds of CPU (100,000 objects: many
minutes on 2 cores); writing into its in-memory backend in the server's own process costs
microseconds. Objects are the benchmarks' usual ones (:mod:`benchmarks.data`), so a sync
sees the same keys and bytes as after PUTs. :func:`seeded_moto` starts one for a scenario.

Its flat listings (``ListObjectsV2`` without a delimiter, what ``find`` asks for) are served
from a sorted index of the bucket's keys, rebuilt after any write: moto itself copies and
sorts the whole bucket for every page, so a listing of n keys cost it O(n^2 log n / 1000)
(100,000 keys: about 200 s on a loaded 2-core machine, where S3 itself takes a second or two).
Pages, continuation tokens and delete markers are moto's own; every client listing the
server gets the same faster server, so ratios between them stay fair.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.data import file_bytes, relpath
from tests.servers.procs import environ, wait_for_port
from tests.servers.s3 import AWS_ENV, REGION, MotoServer

Seed = tuple[str, str, int, int]  # bucket, prefix, count, size


@contextmanager
def seeded_moto(log: Path, seeds: list[Seed]) -> Iterator[MotoServer]:
    """A started moto_server holding ``seeds``; stopped on leaving."""
    with environ(AWS_ENV):
        server = MotoServer(log)
        argv = [
            sys.executable,
            "-m",
            "benchmarks.seeded_moto",
            str(server.port),
            *(":".join(map(str, seed)) for seed in seeds),
        ]
        with open(log, "ab") as out:
            server.process.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=server.process.env,
            )
        # it listens once every object is written: 100,000 take moto a minute or so
        wait_for_port(server.port, server.process.proc, log, timeout=1800)
        try:
            yield server
        finally:
            server.stop()


def index_listings() -> None:
    """Serve delimiter-less ``ListObjectsV2`` pages from a sorted index of key names."""
    from bisect import bisect_left, bisect_right
    from typing import Any

    from moto.s3.models import FakeDeleteMarker, S3Backend
    from moto.s3.utils import _VersionedKeyStore

    writes = [0]  # any write to any bucket's keys: the index is rebuilt on the next listing

    def counted(method: Any) -> Any:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            writes[0] += 1
            return method(self, *args, **kwargs)

        return write

    for name in ("__setitem__", "__delitem__", "pop", "setlist", "clear", "update"):
        setattr(_VersionedKeyStore, name, counted(getattr(_VersionedKeyStore, name)))
    index: dict[int, tuple[int, Any, list[str]]] = {}
    moto_listing = S3Backend.list_objects_v2

    def list_objects_v2(
        self: Any, bucket: Any, prefix: str | None, delimiter: str | None,
        continuation_token: str | None, start_after: str | None, max_keys: int,
    ) -> Any:
        keys = bucket.keys
        limit = self._pagination_tokens.get(continuation_token) if continuation_token \
            else start_after
        if delimiter or not max_keys or not isinstance(keys, _VersionedKeyStore) or (
            continuation_token and limit is None
        ):
            return moto_listing(self, bucket, prefix, delimiter, continuation_token,
                                start_after, max_keys)
        held = index.get(id(bucket))
        if held is None or held[0] != writes[0] or held[1] is not keys:
            held = (writes[0], keys, sorted(dict(keys)))
            index[id(bucket)] = held
        names, prefix = held[2], prefix or ""
        at = bisect_left(names, prefix)
        if limit:
            at = max(at, bisect_right(names, limit))
        page: list[Any] = []
        while at < len(names) and len(page) <= max_keys and names[at].startswith(prefix):
            key = keys.get(names[at])
            if key is not None and not isinstance(key, FakeDeleteMarker):
                page.append(key)
            at += 1
        return self._truncate_result(page, max_keys)  # the page, is_truncated, its token

    S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]


def seed(seeds: list[Seed]) -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for bucket, prefix, count, size in seeds:
        backend.create_bucket(bucket, REGION)
        for i in range(count):
            backend.put_object(bucket, f"{prefix}/{relpath(i)}", file_bytes(i, size))


def main(argv: list[str]) -> None:
    port, *specs = argv
    seeds = []
    for spec in specs:
        bucket, prefix, count, size = spec.split(":")
        seeds.append((bucket, prefix, int(count), int(size)))
    index_listings()
    seed(seeds)
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main(sys.argv[1:])
