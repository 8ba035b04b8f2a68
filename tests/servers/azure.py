"""Azure Blob through Azurite (npm ``azurite``, installed by ``npm ci --prefix tests/servers``),
one per test session, in memory, on a free 127.0.0.1 port. Azurite keeps no blob versions."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.procs import ServerProcess, free_port

ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key (not a real secret, but tests treat it
# as one and check it never lands in logs or on disk)
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr"
               "/KBHBeksoGMGw==")
CONTAINER = "dags"
BINARY = Path(__file__).parent / "node_modules" / ".bin" / "azurite-blob"


class Azurite:
    def __init__(self, workdir: Path) -> None:
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run `npm ci --prefix tests/servers`")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{ACCOUNT}"
        self.process = ServerProcess(
            [str(BINARY), "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
             "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
             "--debug", str(workdir / "debug.log")],
            self.port, workdir / "server.log",
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.endpoint};")

    def connection(self) -> str:
        return json.dumps({"conn_type": "wasb",
                           "extra": {"connection_string": self.connection_string}})

    def filesystem(self) -> Any:
        import adlfs

        return adlfs.AzureBlobFileSystem(connection_string=self.connection_string,
                                         skip_instance_cache=True)

    def account_sas(self, *, read: bool = True, hours: int = 1) -> str:
        from datetime import datetime, timedelta, timezone

        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

        return generate_account_sas(
            ACCOUNT, ACCOUNT_KEY,
            resource_types=ResourceTypes(service=True, container=True, object=True),
            permission=AccountSasPermissions(read=read, list=True),
            expiry=datetime.now(timezone.utc) + timedelta(hours=hours),
        )

    def operations(self) -> list[str]:
        """The operations Azurite dispatched, in order (``Container_ListBlobFlatSegment``,
        ``Blob_Download``, ...), read from its debug log."""
        log = self.process.log.parent / "debug.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return re.findall(r"DispatchMiddleware: Operation=(\w+)", text)

    def mark(self) -> int:
        time.sleep(0.2)  # the debug log is written asynchronously
        return len(self.operations())

    def operations_since(self, mark: int) -> list[str]:
        time.sleep(0.2)
        return self.operations()[mark:]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    server.start()
    server.filesystem().mkdir(CONTAINER)
    yield server
    server.stop()
