"""S3 through moto_server (``moto[server]``), one per test session, on a free 127.0.0.1 port.

Its access log has one line per request, so tests count what reached the server:
``server.requests_since(mark)`` returns ``(method, path)`` pairs.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.procs import ServerProcess, environ, free_port

ACCESS_KEY = "AKIAMOTOKEYID4242"
SECRET_KEY = "moto-Secret-Value-9c1f7e"  # distinctive, so tests can grep for leaks
SESSION_TOKEN = "moto-Session-Token-77ab31"
REGION = "us-east-1"
# werkzeug colours the lines of statuses other than 200 (206 ranges, 404s) with ANSI codes
_ANSI = r"(?:\x1b\[[\d;]*m)*"
_LINE = re.compile(rf'"{_ANSI}(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/[\d.]+{_ANSI}" (\d{{3}})')

AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",  # else credential lookup stalls on the metadata URL
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "unused-default-key",  # the tests pass real ones through conn_id
    "AWS_SECRET_ACCESS_KEY": "unused-default-secret",
}


class MotoServer:
    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = ServerProcess(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            self.port, log, env=AWS_ENV,
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def connection(self, **extra: Any) -> str:
        """A DAGFETCH_CONN_<ID> value (JSON) reaching this server."""
        return json.dumps({
            "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint, "region_name": REGION, **extra},
        })

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless an earlier test of the session did."""
        client = self.client()
        if name not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
            client.create_bucket(Bucket=name)

    def reset(self) -> None:
        url = f"{self.endpoint}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - our local server
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def requests(self) -> list[tuple[str, str, int]]:
        return [(m, p, int(s)) for m, p, s in _LINE.findall(self.process.log_text())]

    def mark(self) -> int:
        time.sleep(0.2)  # let the last log lines land
        return len(self.requests())

    def requests_since(self, mark: int) -> list[tuple[str, str, int]]:
        time.sleep(0.2)
        return [r for r in self.requests()[mark:] if not r[1].startswith("/moto-api")]

    def settled_requests_since(
        self, mark: int, timeout: float = 10.0
    ) -> list[tuple[str, str, int]]:
        """Requests since ``mark``, once the log stopped growing: moto logs a request after
        answering it, and on a loaded machine the line can land a second later."""
        seen = self.requests_since(mark)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.requests_since(mark)
            if len(now) == len(seen):
                break
            seen = now
        return seen


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    with environ(AWS_ENV):
        yield


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory, aws_env: None) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "access.log")
    server.start()
    yield server
    server.stop()
