"""An SSH server for git on 127.0.0.1 (asyncssh), so the git backend's SSH transport is
tested for real: OpenSSH's ``ssh`` client, key authentication and host-key checking.

The server accepts one client key and runs ``git-upload-pack`` for repositories under
``root``; anything else is refused.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.servers.git import GIT_ENV, GitServers, free_port


class GitSshServer:
    def __init__(self, root: Path, user: str = "git") -> None:
        self.root = root
        self.user = user
        self.port = free_port()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.commands: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("the SSH server did not start")

    @property
    def known_hosts(self) -> str:
        public = self.host_key.export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {public}"

    @property
    def client_private_key(self) -> str:
        return str(self.client_key.export_private_key().decode())

    def url(self, name: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}/{name}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        authorized = asyncssh.import_authorized_keys(
            self.client_key.export_public_key().decode()
        )
        self._server = self._loop.run_until_complete(asyncssh.create_server(
            lambda: _Server(self.user), "127.0.0.1", self.port,
            server_host_keys=[self.host_key], authorized_client_keys=authorized,
            process_factory=self._handle, encoding=None, allow_scp=False,
        ))
        ready.set()
        self._loop.run_forever()

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or ""
        self.commands.append(command)
        args = shlex.split(command)
        if len(args) != 2 or args[0] != "git-upload-pack":
            process.stderr.write(b"only git-upload-pack is served here\n")
            process.exit(1)
            return
        path = (self.root / args[1].lstrip("/")).resolve()
        if not path.is_relative_to(self.root.resolve()):
            process.exit(1)
            return
        env = {**os.environ, **GIT_ENV}
        protocol = process.env.get("GIT_PROTOCOL")
        if protocol:
            env["GIT_PROTOCOL"] = str(protocol)
        proc = await asyncio.create_subprocess_exec(
            "git-upload-pack", "--strict", str(path), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        async def feed() -> None:
            try:
                while data := await process.stdin.read(65536):
                    stdin.write(data)
                    await stdin.drain()
            except (ConnectionError, asyncssh.Error):
                pass
            finally:
                stdin.close()

        async def drain(source: asyncio.StreamReader, sink: Any) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()

        feeding = asyncio.ensure_future(feed())
        await asyncio.gather(drain(stdout, process.stdout), drain(stderr, process.stderr))
        code = await proc.wait()
        feeding.cancel()
        process.exit(code)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


_SERVER: GitSshServer | None = None


@pytest.fixture(scope="session")
def git_ssh(git_servers: GitServers) -> Iterator[GitSshServer]:
    """An SSH server over the same repositories the other git servers serve."""
    global _SERVER
    if _SERVER is None:
        _SERVER = GitSshServer(git_servers.root)
    yield _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


class _Server(asyncssh.SSHServer):
    def __init__(self, user: str) -> None:
        self.user = user

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate; only the authorized client key gets in

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False
