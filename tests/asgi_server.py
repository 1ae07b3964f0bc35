"""Run an ASGI app under uvicorn in a thread on a free 127.0.0.1 port, for tests.

``serve_asgi(app)`` is a context manager yielding the base URL; it waits until the
server accepts connections and stops it on exit. ``tls=(certfile, keyfile)`` serves
https, ``url_host`` names the host in the URL (``localhost`` for test certificates).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.conftest import free_port


@contextmanager
def serve_asgi(app: Any, *, lifespan: str = "off", tls: tuple[str, str] | None = None,
               url_host: str = "127.0.0.1", start_timeout_s: float = 60.0) -> Iterator[str]:
    port = free_port()
    ssl = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan=lifespan, **ssl))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server for {app!r} did not start (see the log)")
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://{url_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
