"""A real HTTP endpoint on 127.0.0.1 for webhook tests: it records every request and can fail
the first N requests, answer a given sequence of statuses, hang past the client's timeout, and
verify signatures. It stops by itself after `lifetime` seconds at the latest."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float  # time.time() when the request was read
    headers: dict[str, str]
    body: bytes
    status: int
    signature_ok: bool | None  # None when no secret is configured

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers.get("Idempotency-Key", "")


@dataclass
class Behaviour:
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    hang_first: int = 0  # the first N requests sleep `hang_seconds` before answering
    hang_seconds: float = 0.0
    delay: float = 0.0  # every request waits this long (a slow endpoint)
    secret: str | None = None  # verify X-Segcli-Signature; a bad one gets 401


class Endpoint:
    """Start with `with Endpoint() as ep:`; `ep.url` is its address."""

    def __init__(self, behaviour: Behaviour | None = None, lifetime: float = 300.0) -> None:
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.lifetime = lifetime
        ep = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                ep.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        at = time.time()
        b = self.behaviour
        with self.lock:
            n = len(self.received)
            status = b.statuses[n] if n < len(b.statuses) else 200
            ok = None
            if b.secret is not None:
                want = "sha256=" + hmac.new(b.secret.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, h.headers.get("X-Segcli-Signature", ""))
                status = status if ok else 401
            self.received.append(Received(at, dict(h.headers.items()), body, status, ok))
        if n < b.hang_first:
            time.sleep(b.hang_seconds)
        if b.delay:
            time.sleep(b.delay)
        try:
            h.send_response(status)
            h.send_header("Content-Length", "2")
            h.end_headers()
            h.wfile.write(b"ok")
        except OSError:
            pass  # the client gave up (timeout)

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def __enter__(self) -> Endpoint:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.timer = threading.Timer(self.lifetime, self.server.shutdown)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()
