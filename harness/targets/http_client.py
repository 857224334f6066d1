"""The FHIR REST client: guarded addresses, timeouts, retries, auth, bounded bodies, evidence.

Target problems (timeouts, resets, oversized or non-JSON bodies, error statuses) never raise:
they come back as an ``HttpResult`` with ``error`` set, so the rule that asked reports
``error``. Only a configuration the harness refuses (a private address without
``--allow-insecure-local``, a malformed URL) raises ``ConfigurationError``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from harness.errors import ConfigurationError
from harness.evidence import EvidenceStore, Exchange
from harness.targets.options import CONNECT_TIMEOUT, PAGE_LIMIT, READ_TIMEOUT
from harness.wording import network_reason

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 503})


@dataclass
class ClientConfig:
    base_url: str
    token: str | None = None
    oauth_token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    retries: int = 3
    backoff: float = 0.5
    max_retry_after: float = 30.0
    max_body: int = 50 * 1024 * 1024
    page_limit: int = PAGE_LIMIT
    allow_insecure_local: bool = False

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.client_secret) if s]


@dataclass
class HttpResult:
    """What came back: status, headers, body, parsed JSON (if any), the evidence, or an error."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    exchange: Exchange
    error: str | None = None
    json: Any = None
    unreachable: bool = False  # the server was not reached or did not answer (not: it answered badly)

    @property
    def where(self) -> str:
        return self.exchange.describe()


def secret_from_env(variable: str | None) -> str | None:
    """A secret named by an environment variable (secrets never go on a command line)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigurationError(f"environment variable {variable} is not set")
    return value


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def check_address(url: str, allow_insecure_local: bool) -> None:
    """Refuse non-HTTPS and private, loopback or link-local targets unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"'{url}' is not an http(s) URL")
    if allow_insecure_local:
        return
    if parts.scheme != "https":
        raise ConfigurationError(f"'{url}' is not HTTPS; pass --allow-insecure-local for a local sandbox")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve '{parts.hostname}': {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ConfigurationError(
                f"'{parts.hostname}' resolves to {address}, a private or local address; "
                "pass --allow-insecure-local to test a local sandbox")


@dataclass
class FhirClient:
    config: ClientConfig
    evidence: EvidenceStore
    session: requests.Session = field(default_factory=requests.Session)
    _token: str | None = None
    _token_expiry: float = 0.0
    stop: Any = None  # harness.stopping.Stop: no request waits past the run's deadline
    created: list[tuple[str, str]] = field(default_factory=list)  # (type, id) of records this client's POSTs made

    def __post_init__(self) -> None:
        self.base = self.config.base_url.rstrip("/") + "/"
        check_address(self.base, self.config.allow_insecure_local)
        if self.config.cert:
            self.session.cert = (self.config.cert, self.config.key) if self.config.key else self.config.cert
        if self.config.ca:
            self.session.verify = self.config.ca
        self.evidence.redactor.secrets.extend(self.config.secrets())

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else urljoin(self.base, path.lstrip("/"))

    def _bearer(self, rule: str | None) -> str | None:
        if self.config.oauth_token_url:
            if self._token is None or time.monotonic() >= self._token_expiry:
                self._fetch_token(rule)
            return self._token
        return self.config.token

    def _fetch_token(self, rule: str | None) -> None:
        cfg = self.config
        assert cfg.oauth_token_url is not None
        check_address(cfg.oauth_token_url, cfg.allow_insecure_local)
        form = {"grant_type": "client_credentials", "client_id": cfg.client_id or "",
                "client_secret": cfg.client_secret or ""}
        if cfg.scope:
            form["scope"] = cfg.scope
        result = self._send("POST", cfg.oauth_token_url, {"Accept": "application/json"}, form, rule)
        token = result.json.get("access_token") if isinstance(result.json, dict) else None
        if result.error or result.status != 200 or not isinstance(token, str):
            raise ConfigurationError(f"OAuth2 token request failed ({result.error or result.status}) "
                                     f"at {result.where}")
        self.evidence.redactor.secrets.append(token)
        self._token = token
        self._token_expiry = time.monotonic() + float(result.json.get("expires_in", 300)) - 30

    def request(self, method: str, path: str, *, rule: str | None = None, auth: bool = True,
                headers: dict[str, str] | None = None, body: Any = None) -> HttpResult:
        url = self.url(path)
        if _origin(url) != _origin(self.base):
            # links the server hands back (paging) must not point the harness anywhere else
            exchange = self.evidence.record(rule=rule, method=method, url=url, request_headers={},
                                            request_body=None, status=None, response_headers={},
                                            response_body=None, elapsed_ms=0.0,
                                            error="link to another origin refused")
            return HttpResult(None, {}, b"", exchange, exchange.error)
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = FHIR_JSON
        if auth:
            token = self._bearer(rule)
            if token:
                sent["Authorization"] = f"Bearer {token}"
        payload = orjson.dumps(body) if body is not None and not isinstance(body, bytes) else body
        result = self._send(method, url, sent, payload, rule)
        made = result.json if method == "POST" and result.status in (200, 201) else None
        if isinstance(made, dict) and isinstance(made.get("resourceType"), str) and isinstance(made.get("id"), str):
            self.created.append((made["resourceType"], made["id"]))  # so a sandbox can be left as it was found
        return result

    def _send(self, method: str, url: str, headers: dict[str, str], payload: Any,
              rule: str | None) -> HttpResult:
        origin = _origin(url)
        for _redirect in range(6):
            result = self._with_retries(method, url, headers, payload, rule)
            location = result.headers.get("Location") or result.headers.get("location")
            if result.error or result.status not in (301, 302, 303, 307, 308) or not location:
                return result
            target = urljoin(url, location)
            if _origin(target) != origin:
                result.error = f"redirect to another origin refused ({_origin(target)[1]})"
                return result
            url = target
        result.error = "too many redirects"
        return result

    def _with_retries(self, method: str, url: str, headers: dict[str, str], payload: Any,
                      rule: str | None) -> HttpResult:
        attempt = 0
        while True:
            result = self._once(method, url, headers, payload, rule)
            if result.status not in RETRY_STATUSES or attempt >= self.config.retries:
                return result
            attempt += 1
            delay = self.config.backoff * 2 ** (attempt - 1)
            retry_after = result.headers.get("Retry-After")
            if retry_after and retry_after.isdigit():
                delay = max(delay, float(retry_after))
            time.sleep(min(delay, self.config.max_retry_after))

    def _timeouts(self) -> tuple[float, float] | None:
        """Connect and read timeouts, cut to what is left of the run; None when nothing is left."""
        connect, read = self.config.connect_timeout, self.config.read_timeout
        if self.stop is None:
            return connect, read
        if self.stop():
            return None
        left = self.stop.remaining()
        return (connect, read) if left is None else (min(connect, max(left, 0.05)), min(read, max(left, 0.05)))

    def _once(self, method: str, url: str, headers: dict[str, str], payload: Any,
              rule: str | None) -> HttpResult:
        start = time.monotonic()
        status: int | None = None
        got_headers: dict[str, str] = {}
        body = b""
        error: str | None = None
        unreachable = False
        timeouts = self._timeouts()
        if timeouts is None:
            exchange = self.evidence.record(rule=rule, method=method, url=url, request_headers=headers,
                                            request_body=None, status=None, response_headers={},
                                            response_body=None, elapsed_ms=0.0,
                                            error=f"not sent: {self.stop()}")
            return HttpResult(None, {}, b"", exchange, exchange.error, unreachable=True)
        try:
            form = payload if isinstance(payload, dict) else None
            data = None if form is not None else payload
            # verify and cert passed explicitly: requests lets REQUESTS_CA_BUNDLE override the session's
            with self.session.request(method, url, headers=headers, data=form or data, stream=True,
                                      allow_redirects=False, verify=self.session.verify, cert=self.session.cert,
                                      timeout=timeouts) as resp:
                status = resp.status_code
                got_headers = dict(resp.headers)
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > self.config.max_body:
                        error = f"response body larger than the {self.config.max_body:,}-byte limit"
                        break
                    if time.monotonic() - start > timeouts[1] * 4:
                        error, unreachable = "response took too long to arrive", True
                        break
                    chunks.append(chunk)
                body = b"".join(chunks)
        except requests.Timeout:
            error, unreachable = f"timed out (connect {timeouts[0]:g}s, read {timeouts[1]:g}s)", True
        except requests.ConnectionError as exc:
            error, unreachable = f"connection failed: {network_reason(exc)}", True
        except requests.RequestException as exc:
            error = f"request failed: {network_reason(exc)}"
        exchange = self.evidence.record(
            rule=rule, method=method, url=url, request_headers=headers,
            request_body=payload if isinstance(payload, bytes) else None, status=status,
            response_headers=got_headers, response_body=body or None,
            elapsed_ms=(time.monotonic() - start) * 1000, error=error)
        # the error text may quote the URL: keep only the redacted form
        result = HttpResult(status, got_headers, body, exchange, exchange.error, unreachable=unreachable)
        if body and error is None:
            try:
                result.json = orjson.loads(body)
            except orjson.JSONDecodeError:
                result.json = None
        return result
