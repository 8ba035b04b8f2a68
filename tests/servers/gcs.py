"""GCS through gcp-storage-emulator, one per test session, on a free 127.0.0.1 port.

gcsfs hangs about 60 s per call against it unless GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false;
the emulator is single-threaded, so tests keep concurrency near 4. It ignores generations.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.procs import ServerProcess, environ, free_port

BUCKET = "dagfetch-tests"
GCS_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE|PATCH) (\S+) HTTP/[\d.]+" (\d{3})')


class GcsEmulator:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = ServerProcess(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "-H", "127.0.0.1",
             "--port", str(self.port), "--in-memory", "--default-bucket", BUCKET],
            self.port, log,
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def connection(self, **extra: Any) -> str:
        return json.dumps({"conn_type": "google_cloud_platform",
                           "extra": {"endpoint_url": self.endpoint, "anon": True,
                                     "project": "test", **extra}})

    def filesystem(self) -> Any:
        import gcsfs

        return gcsfs.GCSFileSystem(endpoint_url=self.endpoint, token="anon", project="test",
                                   skip_instance_cache=True)

    def requests(self) -> list[tuple[str, str, int]]:
        return [(m, p, int(s)) for m, p, s in _LINE.findall(self.process.log_text())]

    def mark(self) -> int:
        time.sleep(0.1)
        return len(self.requests())

    def requests_since(self, mark: int) -> list[tuple[str, str, int]]:
        time.sleep(0.1)
        return self.requests()[mark:]


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    with environ(GCS_ENV):
        server = GcsEmulator(tmp_path_factory.mktemp("gcs") / "server.log")
        server.start()
        yield server
        server.stop()
