"""The team cache: versions uploaded once by the leading node to object storage the team
already runs, and fetched from there by every other node in a handful of requests.

- :mod:`~dagfetch.team.documents`: what the team cache holds and the JSON of each document;
- :mod:`~dagfetch.team.objects`: the store's objects through fsspec (one request per call);
- :mod:`~dagfetch.team.upload`: the leader's upload, the pointer moving last;
- :mod:`~dagfetch.team.fetch`: a follower's fetch, verified before it is published;
- :mod:`~dagfetch.team.gc`: gc of the team cache by the local cache's rules;
- :mod:`~dagfetch.team.cache`: :class:`TeamCache`, the facade both roles use.
"""

from dagfetch.team.cache import Followed, TeamCache
from dagfetch.team.documents import Pointer, VersionDocument
from dagfetch.team.fetch import Fetched
from dagfetch.team.gc import TeamGcReport
from dagfetch.team.upload import Uploaded

__all__ = [
    "Fetched", "Followed", "Pointer", "TeamCache", "TeamGcReport", "Uploaded", "VersionDocument",
]
