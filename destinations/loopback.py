"""A threaded HTTP server on its own thread: the lifecycle every local server of outflow
shares (the tool sandboxes and the inbound webhook receiver)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ThreadedServer:
    """`start()` binds (port 0 = any free port), serves on a daemon thread and returns the url;
    `stop()` shuts it down; usable as a context manager. Subclasses give `handler_class()`."""

    host = "127.0.0.1"
    port = 0
    poll_interval = 0.05
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    url: str | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> str:
        if self._server is None:
            self._server = _Server((self.host, self.port), self.handler_class())
            host, port = self._server.server_address[:2]
            self.url = f"http://{host}:{port}"
            self._thread = threading.Thread(target=self._server.serve_forever, args=(self.poll_interval,),
                                            daemon=True, name=type(self).__name__)
            self._thread.start()
        return self.url  # type: ignore[return-value]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)  # type: ignore[union-attr]
            self._server = self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
