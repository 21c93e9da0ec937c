"""POST one webhook batch with retries (SPEC §2.9).

The standard library's urllib is enough here: one POST of a small JSON body per batch, a
per-request timeout, and the status code. A client library would add a dependency for no
behaviour we need (no connection pooling matters at one request per 500 contacts). It is
imported when a batch is sent, not when segcli starts: urllib.request loads ssl, a tenth of
the start-up of a run that sends nothing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from email.message import Message
from typing import Any

from segcli import __version__

ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the 2nd attempt; doubled before each next one
MAX_RETRY_AFTER = 10.0


class DeliveryError(Exception):
    """A batch could not be delivered; the message says why."""


def signature(secret: str, body: bytes) -> str:
    """The X-Segcli-Signature header value: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    """POST `body`; return on 2xx. Timeouts, connection errors, 429 and 5xx are retried with
    backoff, ATTEMPTS attempts in all; any other answer fails at once. DeliveryError if not
    delivered."""
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": f"segcli/{__version__}",
        **headers,
    }
    import urllib.error

    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        wait = BACKOFF * 2 ** (attempt - 1)
        try:
            _send(url, body, all_headers, timeout)
            return
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} {exc.reason}"
            if exc.code != 429 and exc.code < 500:
                raise DeliveryError(f"{problem} (not retried: the endpoint refused it)") from None
            wait = max(wait, _retry_after(exc.headers))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = "timed out" if _is_timeout(reason) else f"connection failed: {reason}"
        if attempt < ATTEMPTS:
            time.sleep(wait)
    raise DeliveryError(f"{problem} ({ATTEMPTS} attempts)")


@functools.cache
def _opener() -> Any:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """A redirect would turn the POST into a GET: report the 3xx as a failure instead."""

        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    import urllib.request

    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _opener().open(req, timeout=timeout) as resp:
        resp.read()
        if not 200 <= resp.status < 300:
            raise DeliveryError(f"HTTP {resp.status} (not a success)")


def _is_timeout(reason: object) -> bool:
    return isinstance(reason, TimeoutError) or "timed out" in str(reason)


def _retry_after(headers: Message | None) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return min(float(value), MAX_RETRY_AFTER) if value else 0.0
    except ValueError:
        return 0.0
