"""Serving the emulator over HTTP: standalone (`python -m local.stripe_emulator`) or in a test thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import EmulatorApp
from .core import Emulator


class _QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive (the SDK reuses connections) without a log line per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if logging.getLogger("stripe_emulator").isEnabledFor(logging.DEBUG):
            super().log_request(code, size)


@dataclass
class RunningEmulator:
    emulator: Emulator
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start(host: str = "127.0.0.1", port: int = 0) -> RunningEmulator:
    """Serve a fresh emulator on `host:port` (0: any free port) from a daemon thread."""
    app = EmulatorApp()
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    # Keep-alive connections hold their handler threads: don't wait for them when stopping.
    server.daemon_threads = True  # type: ignore[attr-defined]
    server.block_on_close = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="stripe-emulator", daemon=True)
    thread.start()
    return RunningEmulator(app.emulator, server, thread)
