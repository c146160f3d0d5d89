"""Asking a remote model without trusting the network.

Every request has one deadline, `timeout` seconds for everything (connecting, sending, waiting, reading
the whole body): a server that trickles a byte a second is a timeout, not a hang. A body over `MAX_BYTES`
is refused (by its declared length before reading, else as it arrives). Timeouts, connection errors,
cut-off or non-JSON bodies, 429 and 5xx answers are retried with exponential backoff and jitter; a
`Retry-After` header is honoured and holds back every request of this adapter, not only the one that got
it, since a rate limit applies to the client. A redirect is never followed (the request, credential and
all, would go wherever the server says): it is reported with where it points. A fault that persists after
the retries, or one that retrying cannot fix (a 4xx, an answer that does not fit the request), raises
`InputError` naming the URL and the fault.

Each attempt is counted in the adapter's `Ledger` before it goes out (*sent*, which the budget bounds) and
when the server's 2xx status arrives (*paid*). The credential is sent as a header and never part of a
message: everything quoted from a server goes through `trainprove_core.secrets.redact`.
"""

from __future__ import annotations

import email.utils
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson

from trainprove_core import InputError, secrets

from .answers import AnswerError
from .ledger import Ledger

T = TypeVar("T")

MAX_BYTES = 64 * 2**20
"""The largest response trainprove reads (a request's answers are far smaller)."""

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


class MalformedBody(ValueError):
    """A body that is not what it should be (cut off, not JSON): the next attempt may get a good one."""


def read_json(content: bytearray, headers: Mapping[str, str] | None = None) -> Any:
    """The JSON document in a response body."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        # A cut-off body or a proxy's HTML error page: both may be gone on the next try.
        raise MalformedBody(
            f"the body is not valid JSON ({exc}; {len(content)} bytes, "
            f"starting {excerpt(text_of(content), 60)})"
        ) from None


class Deadline(dict):
    """httpx's timeouts for one request (`connect`, `write`, `pool`, `read`), each the time left until a
    single deadline, so that the phases together never take longer than `seconds`.

    httpx hands this mapping, as given in the request's `timeout` extension, to httpcore, which looks up
    each phase's timeout as the phase starts. The body is read with the time left when it starts, so a
    server that trickles bytes is cut off at the deadline by `cut_off_at_deadline`.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(connect=seconds, read=seconds, write=seconds, pool=seconds)
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def get(self, key: str, default: Any = None) -> Any:
        return self.left() if key in self else default

    def __getitem__(self, key: str) -> float:
        super().__getitem__(key)
        return self.left()


def cut_off_at_deadline(response: Any, deadline: Deadline) -> threading.Timer | None:
    """A timer that shuts the response's connection down at the deadline (a blocked read then returns),
    or None where the connection's socket is not reachable."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:
        return None

    def shut() -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(deadline.left(), shut)
    timer.daemon = True
    timer.start()
    return timer


class Transport:
    """An HTTP client for one adapter: pooled connections (at most `connections` open), a `timeout` per
    request, retries by `policy`, `headers` (the credential among them) on every request, and every
    attempt counted in `ledger`."""

    def __init__(
        self,
        *,
        timeout: float,
        policy: RetryPolicy,
        connections: int,
        headers: Mapping[str, str] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        import httpx

        self._httpx = httpx
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.Client(
            timeout=timeout, limits=limits, headers=dict(headers or {}), follow_redirects=False
        )
        self.timeout = timeout
        self.policy = policy
        self.counters = Counters()
        self.ledger = ledger or Ledger(None)
        self._lock = threading.Lock()
        self._open_at = 0.0  # monotonic time before which no request may go out (a shared Retry-After)
        self._rng = random.Random()

    def close(self) -> None:
        self._client.close()

    def get_json(self, url: str, parse: Callable[[Any], T]) -> T:
        """GET `url` and return `parse(document)`."""
        return self._call("GET", url, None, None, 0, read_json, parse)

    def post(
        self,
        url: str,
        body: bytes,
        *,
        headers: Mapping[str, str],
        images: int,
        parse: Callable[[Any], T],
        read: Callable[[bytearray, Mapping[str, str]], Any] = read_json,
    ) -> T:
        """POST `body` (a request for `images` images, with `headers`) to `url` and return
        `parse(read(content, response_headers))`.

        `read` raises `MalformedBody` for a body that is not what it should be (cut off, a proxy's error
        page): retried. `parse` raises `AnswerError` when the document does not answer the request: not
        retried (a server that miscounts will miscount again, and each try may cost a query).
        """
        return self._call("POST", url, body, headers, images, read, parse)

    def _call(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        images: int,
        read: Callable[[bytearray, Mapping[str, str]], Any],
        parse: Callable[[Any], T],
    ) -> T:
        failures = 0
        while True:
            try:
                content, answered = self._attempt(method, url, body, headers, images)
                try:
                    document = read(content, answered)
                except MalformedBody as exc:
                    raise _Fault(str(exc)) from None
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
                # own headers: redact before the message goes anywhere.
                raise InputError(secrets.redact(f"suspect endpoint {url}: {exc}")) from None

    def _attempt(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None, images: int
    ) -> tuple[bytearray, Any]:
        httpx = self._httpx
        self._wait_for_gate()
        self.ledger.send(images, url)
        with self._lock:
            self.counters.requests += 1
        deadline = Deadline(self.timeout)
        timer = None
        try:
            with self._client.stream(
                method, url, content=body, headers=headers, extensions={"timeout": deadline}
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    self.ledger.paid(images)  # answered: paid for, whether or not the body arrives in time
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > MAX_BYTES:
                    raise InputError(
                        f"suspect endpoint {url}: the response declares {int(declared)} bytes, more than "
                        f"{MAX_BYTES // 2**20} MiB; ask for fewer images per request (`images_per_request`)"
                    )
                timer = cut_off_at_deadline(response, deadline)
                content = bytearray()
                for piece in response.iter_bytes():
                    content += piece
                    if len(content) > MAX_BYTES:
                        raise InputError(
                            f"suspect endpoint {url}: the response is larger than {MAX_BYTES // 2**20} MiB; "
                            "ask for fewer images per request (`images_per_request`)"
                        )
                    if deadline.expired():
                        break
                _cancel(timer)  # before the connection goes back to the pool
                if deadline.expired():
                    raise _Fault(self._late(len(content)))
        except httpx.TimeoutException:
            raise _Fault(f"no answer within the {self.timeout:g} s timeout") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if deadline.expired():  # the deadline's cut, not the server's
                raise _Fault(self._late(None)) from None
            raise _Fault(f"the response was cut off or malformed ({exc})") from None
        except httpx.TransportError as exc:
            raise _Fault(f"connection failed ({type(exc).__name__}: {exc})") from None
        finally:
            _cancel(timer)
        if 300 <= status < 400:
            where = response.headers.get("Location")
            raise InputError(
                secrets.redact(
                    f"suspect endpoint {url}: HTTP {status} {response.reason_phrase}: the server redirects "
                    f"to {where!r}. trainprove does not follow redirects (the request and its credential "
                    "would go wherever the server says): set `url` to where it points, if you trust it"
                )
            )
        if status in RETRYABLE_4XX or (status >= 500 and status not in NOT_RETRYABLE_5XX):
            raise _Fault(
                f"HTTP {status} {response.reason_phrase}: {excerpt(text_of(content, response.encoding))}",
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 400:
            hint = f" ({HINTS[status]})" if status in HINTS else ""
            quoted = excerpt(text_of(content, response.encoding))
            raise InputError(
                f"suspect endpoint {url}: HTTP {status} {response.reason_phrase}: {quoted}{hint}"
            )
        return content, response.headers

    def _late(self, arrived: int | None) -> str:
        got = "" if arrived is None else f" ({arrived} bytes had arrived)"
        return f"no complete answer within the {self.timeout:g} s timeout{got}"

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


def _cancel(timer: threading.Timer | None) -> None:
    if timer is not None:
        timer.cancel()


def text_of(content: bytes | bytearray, encoding: str | None = None) -> str:
    """The start of a body as text (for messages)."""
    return bytes(content[:4096]).decode(encoding or "utf-8", errors="replace")


def excerpt(text: str, limit: int = 200) -> str:
    """A server's text, quoted in a message: one line, cut at `limit`, every secret redacted."""
    text = secrets.redact(" ".join(text.split()))
    if not text:
        return "(empty body)"
    return repr(text if len(text) <= limit else text[:limit] + "...")


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
