"""A TCP proxy on 127.0.0.1 in front of a real HTTP server, counting the requests a client has
in flight at once (sent, not yet answered: HTTP/1.1 without pipelining, one per connection),
and holding each chunk a client sends for ``delay`` seconds: a slow network, so that a
client's requests overlap as they do against a far-away store."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CountingProxy:
    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        waiting = [False]  # this connection has a request out, unanswered
        back = threading.Thread(target=self._pipe, args=(upstream, client, waiting, False),
                                daemon=True)
        back.start()
        self._pipe(client, upstream, waiting, True)
        back.join()
        with self._lock:
            if waiting[0]:
                self.in_flight -= 1

    def _pipe(self, source: socket.socket, target: socket.socket, waiting: list[bool],
              requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    if requests and not waiting[0]:
                        waiting[0] = True
                        self.in_flight += 1
                        self.most_in_flight = max(self.most_in_flight, self.in_flight)
                    elif not requests and waiting[0]:
                        waiting[0] = False
                        self.in_flight -= 1
                if requests and self.delay:
                    time.sleep(self.delay)
                target.sendall(chunk)
        except OSError:  # a side closed the connection: the finally closes the other
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):  # the other side closed it first
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def counting_proxy(upstream_port: int, delay: float = 0.0) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream_port, delay)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
