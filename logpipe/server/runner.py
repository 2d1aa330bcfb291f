"""Running the API with uvicorn: in the foreground (``logpipe server``) or on a background
thread (tests, and a daemon that serves while it ingests).

Why :class:`BackgroundServer` binds its socket itself: with port 0 the kernel picks a free
port atomically, so parallel test modules never race for one, and the URL is known before
the first request.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["BackgroundServer", "serve"]


def serve(app: Any, host: str, port: int, *, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (SIGINT/SIGTERM drain in-flight requests)."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off")


class BackgroundServer:
    """``app`` served by uvicorn on a thread, on ``host:port`` (port 0: any free one).

    Use as a context manager; :attr:`url` is ``http://host:port``. Uvicorn's logging config
    is left alone (``log_config=None``) so the embedding process keeps its own.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> str:
        """Start serving; return the URL once requests are accepted."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, and join the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
