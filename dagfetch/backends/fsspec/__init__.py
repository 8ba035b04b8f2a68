"""The generic backend: any fsspec file system (file://, memory://, s3://, gs://, az://, http://).

A check is one listing: ``find`` with details on object stores (one request per page of
keys), the index pages on HTTP (:mod:`~dagfetch.backends.fsspec.http_index`); never a HEAD or
GET per object. Change tokens, connection settings and what else differs per store come from
the store-family table of :mod:`dagfetch.storage`, shared with plugins over fsspec.

Downloads on async file systems (s3fs, gcsfs, adlfs, HTTP) run as tasks on fsspec's event
loop, at most ``concurrency`` at once, each retried with exponential backoff on throttling,
5xx and connection errors (:mod:`~dagfetch.backends.fsspec.downloads`); a listing or a
download batch that overruns ``timeout`` is cancelled. The first file that fails for good
cancels the rest and fails the fetch. Other file systems (file://, memory://) download
through a bounded thread pool with the same retries.

With ``version_aware = true`` on S3, GCS or Azure, each listed object's version is kept in
``RemoteFile.extra`` and downloads ask for exactly that version, so a version evicted from
the cache can be fetched again (``Capabilities.versioned``).

Modules: :mod:`~.fetcher` (the fetcher), :mod:`~.markers` (folder markers in listings),
:mod:`~.downloads` (downloads and the retry policy), :mod:`~.reads` (one object's read, tied
to its listing), :mod:`~.http_index` (listing HTTP folders), :mod:`~.timestamps` and
:mod:`~.s3client` (botocore's timestamps parsed faster, its User-Agent header built once per
client), :mod:`~.options` (its manifest options).
"""

from dagfetch.backends.fsspec.fetcher import FsspecFetcher
from dagfetch.backends.fsspec.options import FsspecOptions

__all__ = ["FsspecFetcher", "FsspecOptions"]
