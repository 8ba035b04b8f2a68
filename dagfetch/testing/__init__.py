"""A conformance suite every fetcher backend runs, built-in or third-party.

A backend's test module subclasses :class:`FetcherConformance` and provides one fixture,
``remote``, yielding a :class:`Remote`: a writable location on a real server (or a real local
folder) and the manifest fields that reach it::

    from dagfetch.testing import FetcherConformance

    class TestMyStore(FetcherConformance):
        @pytest.fixture
        def remote(self, my_server):
            yield MyRemote(my_server)

The suite needs pytest; dagfetch itself does not, so import this only from tests.
"""

from dagfetch.testing.conformance import CountingFetcher, FetcherConformance
from dagfetch.testing.remote import LocalRemote, Remote
from dagfetch.testing.workspace import one_repository

__all__ = ["CountingFetcher", "FetcherConformance", "LocalRemote", "Remote", "one_repository"]
