"""A small JSON-over-HTTP client for the CRM and BI APIs, configured from an Airflow connection.

One place for the behaviour both APIs need: connect and read timeouts, a bearer token taken from
the connection's password (never logged), ``429`` honouring ``Retry-After``, retries with
backoff on 5xx and network errors, and an immediate, non-retryable failure on 401/403.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)


class AuthError(RuntimeError):
    """The API refused our credentials (401/403): retrying cannot help, fix the connection."""

    def __init__(self, message: str, conn_id: str | None = None) -> None:
        super().__init__(message)
        self.conn_id = conn_id


class ApiError(RuntimeError):
    """The API kept failing, or answered with something we cannot use."""


class TooLargeError(ApiError):
    """A response larger than the client allows (after decompression)."""


class ConnectionConfigError(ValueError):
    """An Airflow connection's credentials are malformed (e.g. a token with a trailing newline).
    The message never contains the value."""


def check_secret(conn_id: str, field: str, value: str | None, spaces: bool = False) -> None:
    """Refuse a token with whitespace or control characters (a password: control characters, its
    spaces are legal): sent as a header they make requests fail quoting the whole header (the
    secret) into the log and the alert email."""
    bad = (
        (lambda c: ord(c) < 32 or ord(c) == 127) if spaces else (lambda c: c.isspace() or ord(c) < 32 or ord(c) == 127)
    )
    if value and any(map(bad, value)):
        what = "control characters" if spaces else "whitespace or control characters"
        raise ConnectionConfigError(
            f"Airflow connection {conn_id!r}: its {field} contains {what} (a trailing newline from a"
            " copy-paste?); set it again without them. The value is not shown."
        )


def untrusted(text: str, secrets: tuple[str | None, ...] = (), limit: int = 300) -> str:
    """Text from a remote server for an error message: cut to ``limit``, secrets masked, marked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return f"[untrusted response body: {cut!r}]"


def base_url(conn) -> str:
    """An http connection's base URL: its host (a URL itself, or a name with the connection's
    schema as the scheme) and port, without a trailing slash."""
    schema = conn.schema or "http"
    host = conn.host or ""
    base = host if "://" in host else f"{schema}://{host}"
    if conn.port:
        base = f"{base}:{conn.port}"
    return base.rstrip("/")


@dataclass
class ApiClient:
    base_url: str
    token: str | None
    conn_id: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    max_wait: float = 60.0

    @classmethod
    def from_connection(cls, conn_id: str, **kwargs) -> ApiClient:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        check_secret(conn_id, "password (the bearer token)", conn.password)
        return cls(base_url=base_url(conn), token=conn.password, conn_id=conn_id, **kwargs)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.base_url}{path}"
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = self.session.request(method, url, timeout=(self.connect_timeout, self.read_timeout), **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                wait, why = self.backoff * 2 ** (attempt - 1), f"{type(exc).__name__}"
            else:
                if resp.status_code in (401, 403):
                    raise AuthError(
                        f"{self.conn_id}: {method} {path} was refused with {resp.status_code}; "
                        f"check the token in Airflow connection {self.conn_id!r}",
                        conn_id=self.conn_id,
                    )
                if resp.status_code == 429:
                    wait, why = _retry_after(resp, self.backoff * 2 ** (attempt - 1)), "429 Too Many Requests"
                elif resp.status_code >= 500:
                    wait, why = self.backoff * 2 ** (attempt - 1), f"{resp.status_code} server error"
                elif resp.status_code >= 400:
                    # at most a few KB of an error body, whatever it claims or inflates to
                    body = resp.raw.read(4096, decode_content=True) if kwargs.get("stream") else resp.content[:4096]
                    resp.close()
                    raise ApiError(
                        f"{self.conn_id}: {method} {path} failed with {resp.status_code}:"
                        f" {untrusted(body.decode(errors='replace'), (self.token,))}"
                    )
                else:
                    return resp
            if attempt == self.max_attempts:
                raise ApiError(f"{self.conn_id}: {method} {path} still failing after {attempt} attempts ({why})")
            wait = min(wait, self.max_wait)
            log.warning(
                "%s: %s %s: %s; retrying in %.1fs (attempt %s/%s)",
                self.conn_id,
                method,
                path,
                why,
                wait,
                attempt,
                self.max_attempts,
            )
            time.sleep(wait)
        raise AssertionError("unreachable")


def read_bounded(resp, max_bytes: int, deadline: float, where: str) -> bytes:
    """The body, decompressed, refused past ``max_bytes``; a reply still arriving at ``deadline``
    (``time.monotonic()``) is cut off: a slow drip cannot hold a request beyond it."""
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, (resp,))
    timer.daemon = True
    timer.start()
    body = bytearray()
    try:
        for chunk in resp.iter_content(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                raise TooLargeError(f"{where}: the response is larger than {max_bytes} bytes (decompressed)")
            if time.monotonic() > deadline:
                break
    except (requests.RequestException, OSError) as exc:
        if time.monotonic() < deadline:
            raise
        del exc
    finally:
        timer.cancel()
        resp.close()
    if time.monotonic() > deadline:
        raise ApiError(f"{where}: the response did not arrive within the request deadline")
    return bytes(body)


def _shut(resp) -> None:
    """Cut a response off from another thread: shut its socket, so a blocked read returns."""
    try:
        sock = resp.raw.connection.sock
        sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001 - already closed
        pass


def _retry_after(resp: requests.Response, default: float) -> float:
    raw = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default
