"""Asking a remote model without trusting the network.

Every request has a timeout. Timeouts, connection errors, cut-off or non-JSON bodies, 429 and 5xx answers
are retried with exponential backoff and jitter; a `Retry-After` header is honoured and holds back every
request of this adapter, not only the one that got it, since a rate limit applies to the client. A fault
that persists after the retries, or one that retrying cannot fix (a 4xx, an answer that does not fit the
request), raises `InputError` naming the URL and the fault. The credential is sent as a header and is
never part of a message: it is redacted from any body excerpt quoted in an error.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson

from trainprove_core.errors import InputError

from .answers import AnswerError

T = TypeVar("T")

# 501 (not implemented) and 505 (HTTP version) will not change on a retry; other 5xx are the server's
# transient trouble, 408/425/429 ask the client to come back later.
NOT_RETRYABLE_5XX = (501, 505)
RETRYABLE_4XX = (408, 425, 429)

HINTS = {
    401: "the server wants credentials: check `token_env`, `auth_header` and `auth_scheme`",
    403: "the server refused the credentials: check the token named by `token_env`",
    404: "check `url`, and `model` with protocol v2",
    413: "the request is too large: lower `images_per_request`",
    422: "the server did not accept the request's shape: check the request keys of this suspect",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait. `backoff` is the first delay in seconds; it doubles per retry up to
    `max_wait`, and each wait is drawn from [d/2, d] ("equal jitter") so clients that failed together do
    not come back together. A `Retry-After` longer than `max_wait` is a fault, not a wait."""

    retries: int = 5
    backoff: float = 0.5
    max_wait: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        full = min(self.max_wait, self.backoff * 2**attempt)
        return full / 2 + rng.uniform(0, full / 2)


@dataclass
class Counters:
    """What the transport did, for reports and tests: requests sent (retries included) and retries."""

    requests: int = 0
    retries: int = 0


class _Fault(Exception):
    """A transient failure of one attempt; `retry_after` is the server's requested wait, if it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transport:
    """An HTTP client for one adapter: pooled connections (at most `connections` open), a `timeout` per
    request, retries by `policy`, and `headers` (the credential among them) on every request."""

    def __init__(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        connections: int,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
    ) -> None:
        import httpx

        self._httpx = httpx
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.Client(timeout=timeout, limits=limits, headers=dict(headers or {}))
        self.timeout = timeout
        self.policy = policy
        self.counters = Counters()
        self._secret = secret
        self._lock = threading.Lock()
        self._open_at = 0.0  # monotonic time before which no request may go out (a shared Retry-After)
        self._rng = random.Random()

    def close(self) -> None:
        self._client.close()

    def get_json(self, url: str, parse: Callable[[Any], T]) -> T:
        """GET `url` and return `parse(document)`."""
        return self._call("GET", url, None, parse)

    def post_json(self, url: str, body: bytes, parse: Callable[[Any], T]) -> T:
        """POST the JSON `body` to `url` and return `parse(document)`.

        `parse` raises `AnswerError` when the document does not answer the request; that is not retried
        (a server that miscounts will miscount again, and each try may cost a query).
        """
        return self._call("POST", url, body, parse)

    def _call(self, method: str, url: str, body: bytes | None, parse: Callable[[Any], T]) -> T:
        failures = 0
        while True:
            try:
                document = self._attempt(method, url, body)
            except _Fault as fault:
                failures += 1
                if failures > self.policy.retries:
                    tries = "1 attempt" if failures == 1 else f"{failures} attempts"
                    raise InputError(f"suspect endpoint {url}: {fault} (gave up after {tries})") from None
                self._wait(url, fault, failures - 1)
                continue
            try:
                return parse(document)
            except AnswerError as exc:
                # The parser quotes the document, which a hostile or buggy server may fill with the request's
                # own headers: redact before the message goes anywhere (console, report.json, report.html).
                raise InputError(self.redact(f"suspect endpoint {url}: {exc}")) from None

    def _attempt(self, method: str, url: str, body: bytes | None) -> Any:
        httpx = self._httpx
        self._wait_for_gate()
        with self._lock:
            self.counters.requests += 1
        headers = {"Content-Type": "application/json"} if body is not None else None
        # httpx's timeout bounds each read, so a server that trickles a byte a second would hold the audit
        # for ever: the whole response must arrive within `timeout`, and be at most MAX_BYTES.
        started = time.monotonic()
        try:
            with self._client.stream(method, url, content=body, headers=headers) as response:
                content = bytearray()
                for piece in response.iter_bytes():
                    content += piece
                    if len(content) > MAX_BYTES:
                        raise InputError(
                            f"suspect endpoint {url}: the response is larger than {MAX_BYTES // 2**20} MiB; "
                            "ask for fewer images per request (`images_per_request`)"
                        )
                    if time.monotonic() - started > self.timeout:
                        raise _Fault(
                            f"no complete answer within the {self.timeout:g} s timeout "
                            f"({len(content)} bytes had arrived)"
                        )
        except httpx.TimeoutException:
            raise _Fault(f"no answer within the {self.timeout:g} s timeout") from None
        except httpx.RemoteProtocolError as exc:
            raise _Fault(f"the response was cut off or malformed ({exc})") from None
        except httpx.TransportError as exc:
            raise _Fault(f"connection failed ({type(exc).__name__}: {exc})") from None
        raw = bytes(content)
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        status = response.status_code
        if status in RETRYABLE_4XX or (status >= 500 and status not in NOT_RETRYABLE_5XX):
            raise _Fault(
                f"HTTP {status} {response.reason_phrase}: {self._excerpt(text)}",
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            hint = f" ({HINTS[status]})" if status in HINTS else ""
            body = self._excerpt(text)
            raise InputError(f"suspect endpoint {url}: HTTP {status} {response.reason_phrase}: {body}{hint}")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            # A cut-off body or a proxy's HTML error page: both may be gone on the next try.
            raise _Fault(
                f"the body is not valid JSON ({exc}; {len(raw)} bytes, starting {self._excerpt(text, 60)})"
            ) from None

    def _wait(self, url: str, fault: _Fault, attempt: int) -> None:
        with self._lock:
            self.counters.retries += 1
        if fault.retry_after is None:
            time.sleep(self.policy.delay(attempt, self._rng))
            return
        if fault.retry_after > self.policy.max_wait:
            raise InputError(
                f"suspect endpoint {url}: {fault}; the server asks to retry after {fault.retry_after:g} s, "
                f"more than max_wait = {self.policy.max_wait:g} s (raise `max_wait` or lower `concurrency`)"
            )
        with self._lock:
            self._open_at = max(self._open_at, time.monotonic() + fault.retry_after)

    def _wait_for_gate(self) -> None:
        while (remaining := self._open_at - time.monotonic()) > 0:
            time.sleep(remaining)

    def redact(self, text: str) -> str:
        """`text` without the token, nor any start of it of 8 characters or more (an excerpt may be cut
        mid-token)."""
        secret = self._secret
        if not secret:
            return text
        for k in range(len(secret), min(8, len(secret)) - 1, -1):
            text = text.replace(secret[:k], "<token>")
        return text

    def _excerpt(self, text: str, limit: int = 200) -> str:
        text = self.redact(" ".join(text.split()))
        if not text:
            return "(empty body)"
        return repr(text if len(text) <= limit else text[:limit] + "...")


MAX_BYTES = 64 * 2**20
"""The largest response trainprove reads (a request's answers are far smaller)."""


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a `Retry-After` header asks for: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
