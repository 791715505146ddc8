"""Fetch an image by URL without opening the server to SSRF.

    policy = settings.url_policy()                 # OCR_ALLOW_URLS, OCR_URL_ALLOW_HOSTS (ocr/settings.py)
    data = fetch_image_bytes("https://example.com/receipt.jpg", policy)
    rgb = load_image(data)                          # the same path as an upload

Every refusal or failure is a :class:`~ocr.errors.UrlFetchError` subclass with a
stable code (``url_disabled``, ``url_not_allowed``, ``url_timeout``,
``url_too_large``, ``url_not_image``, ``url_fetch_failed``) and a short message
without internals. The refused address is logged; the URL is logged only
redacted (no user info, no query string, no fragment).

What is checked, in order, for the URL and again for every redirect target:

* text, at most :data:`MAX_URL_LENGTH` characters, no control characters,
  spaces or backslashes; scheme ``http`` or ``https``; no user name or password
  (``http://127.0.0.1@evil/`` is refused, not "resolved" either way);
* the host is a plain DNS name or a canonical IP literal. Numeric hosts in other
  spellings (``2130706433``, ``0x7f.1``, ``127.1``, ``0177.0.0.1``) are refused
  outright, as is an IPv6 zone (``%eth0``);
* the port is the scheme's default, 80, 443 or 1024..65535 (no SMTP, etc.);
* the host is on the allow-list when one is set (``OCR_URL_ALLOW_HOSTS``);
* the name is resolved **once** (``socket.getaddrinfo``, within the total time
  limit) and **every** address must be public (see :func:`address_refusal`);
* the TCP connection goes to those checked addresses only: httpx runs on an
  httpcore connection pool whose network backend ignores the host it is given
  and dials the pinned address, so there is no second lookup (DNS rebinding).
  The URL itself is unchanged, so the ``Host`` header, TLS SNI and certificate
  verification use the name;
* redirects (301, 302, 303, 307, 308) are followed by hand, at most
  ``policy.max_redirects``, each target checked as above;
* limits: ``connect_timeout`` per connection attempt; ``total_timeout`` for the
  whole fetch (lookups, every hop, TLS, headers and body), enforced on each socket
  read and write, so a slow drip stops at the deadline; at most ``max_bytes``
  read as a stream whatever ``Content-Length`` says (a larger declared length is
  refused before reading); no content decoding (``Accept-Encoding: identity``,
  raw bytes), so no compression bomb;
* the bytes must carry the signature of an image type the API accepts
  (:func:`ocr.imageio.sniff_image_type`, the one uploads use), checked on the
  first bytes so an HTML page is refused without reading it all.

No proxy, ``.netrc`` or other environment setting is used (``trust_env=False``),
no cookie or credential is sent. Settings are never read from the environment
here: ``ocr.settings`` parses them and calls :meth:`UrlPolicy.from_settings`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import httpcore
import httpx

from ocr.errors import (
    OCRError,
    UrlDisabledError,
    UrlFetchError,
    UrlNotAllowedError,
    UrlNotImageError,
    UrlTimeoutError,
    UrlTooLargeError,
)
from ocr.imageio import SNIFF_ALLOWED_TYPES, SNIFF_BYTES, sniff_image_type

log = logging.getLogger("ocr.url_fetch")

MAX_URL_BYTES = 10 * 1024 * 1024
MAX_URL_LENGTH = 2048
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "ocr-url-fetch/1"
_READ_CHUNK = 64 * 1024

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class UrlPolicy:
    """What URL fetching may do. The defaults are the safe ones (off).

    ``allow_hosts``: empty means any public host; otherwise exact names
    (``images.example.com``), ``*.example.com`` (any name below example.com, not
    example.com itself) or IP literals. The allow-list narrows; it never lets a
    private address through. ``allow_loopback`` is for tests only (a test server
    on 127.0.0.1 / ::1); :meth:`from_settings` never sets it.
    """

    enabled: bool = False
    allow_hosts: tuple[str, ...] = ()
    max_bytes: int = MAX_URL_BYTES
    connect_timeout: float = 5.0
    total_timeout: float = 20.0
    max_redirects: int = 3
    allow_loopback: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_bytes, int) or self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive integer, not {self.max_bytes!r}")
        for name in ("connect_timeout", "total_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if not isinstance(self.max_redirects, int) or not 0 <= self.max_redirects <= 10:
            raise ValueError(f"max_redirects must be an integer 0..10, not {self.max_redirects!r}")
        if isinstance(self.allow_hosts, str):
            raise ValueError("allow_hosts must be a sequence of host names, not one string")
        hosts = tuple(_normalize_allow_entry(h) for h in self.allow_hosts)
        object.__setattr__(self, "allow_hosts", hosts)

    @classmethod
    def from_settings(cls, enabled: bool, allow_hosts: str, **overrides: Any) -> "UrlPolicy":
        """The policy of ``OCR_ALLOW_URLS`` / ``OCR_URL_ALLOW_HOSTS`` as ``ocr.settings`` parsed them.

        ``allow_hosts``: host names separated by commas or spaces (empty: any public host);
        a bad entry is a ``ValueError`` naming the variable. ``overrides`` set other fields.
        """
        hosts = []
        for entry in re.split(r"[,\s]+", allow_hosts.strip()):
            if entry:
                try:
                    hosts.append(_normalize_allow_entry(entry))
                except ValueError as e:
                    raise ValueError(f"OCR_URL_ALLOW_HOSTS: {e}") from None
        return cls(enabled=enabled, allow_hosts=tuple(hosts), **overrides)

    def host_allowed(self, host: str) -> bool:
        """``host`` (normalised: lowercase IDNA, no trailing dot) passes the allow-list."""
        if not self.allow_hosts:
            return True
        for entry in self.allow_hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                    return True
            elif host == entry:
                return True
        return False


def _normalize_allow_entry(entry: str) -> str:
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not a host name")
    text = entry.strip().lower().rstrip(".")
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None and not wildcard and "%" not in name:
        return ip.compressed
    ascii_name = ""
    if name and not re.search(r"[/:@?#\[\]\\%\s]", name):
        try:  # the IDNA encoding httpx gives the same name in a URL, so entries match exactly
            parsed = httpx.URL(f"http://{name}/")
            parsed.host  # noqa: B018 - decodes the labels: xn--zz fails
            ascii_name = parsed.raw_host.decode("ascii")
        except (httpx.InvalidURL, ValueError, UnicodeError):
            ascii_name = ""
    labels = ascii_name.split(".")
    if (not ascii_name or len(ascii_name) > 253 or not all(_LABEL.match(x) for x in labels)
            or _NUMERIC_LABEL.match(labels[-1])):
        raise ValueError(
            f"{entry!r} is not a host name; write names such as images.example.com or "
            "*.example.com, without scheme, port or path, separated by commas"
        )
    return ("*." if wildcard else "") + ascii_name


# ---------------------------------------------------------------- addresses

# Checked explicitly, whatever this Python's ipaddress tables say (they changed in
# 3.11.10 / 3.12.4). Anything else ipaddress calls non-global is refused too.
_BLOCKED_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_BLOCKED_V6 = tuple((ipaddress.ip_network(n), why) for n, why in (
    ("::/96", "IPv4-compatible IPv6"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6"),
    ("::ffff:0:0:0/96", "IPv4-translated IPv6"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment (Teredo, ...)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def address_refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why ``address`` (an IP literal) may not be fetched from, or ``None`` if it may.

    Refused: anything not a plain global unicast address: loopback, private
    (RFC 1918, unique local), CGNAT 100.64/10, link-local (169.254/16 with the
    cloud metadata address, fe80::/10), multicast, reserved, unspecified,
    documentation / benchmarking ranges, IPv4-mapped / -compatible / -translated
    IPv6, 6to4, Teredo, local-use NAT64 and a well-known NAT64 (64:ff9b::/96)
    address whose embedded IPv4 address is refused. ``allow_loopback`` (tests
    only) lets 127/8 and ::1 through, nothing else.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if ip.version == 6 and ip.scope_id:
        return "IPv6 address with a zone"
    if allow_loopback and any(ip in net for net in _LOOPBACK if net.version == ip.version):
        return None
    if ip.version == 4:
        for net in _BLOCKED_V4:
            if ip in net:
                return _v4_kind(ip) + f" ({net})"
    else:
        if ip.is_unspecified:
            return "unspecified"
        if ip.is_loopback:
            return "loopback"
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            inner = address_refusal(str(embedded))
            return f"NAT64 of {embedded}: {inner}" if inner else None
        for net, why in _BLOCKED_V6:
            if ip in net:
                if ip.ipv4_mapped is not None:
                    return f"{why} of {ip.ipv4_mapped}"
                if ip.sixtofour is not None:
                    return f"{why} of {ip.sixtofour}"
                if ip.teredo is not None:
                    return f"{why} (Teredo to {ip.teredo[1]})"
                return why
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not a global address"
    return None


def _v4_kind(ip: ipaddress.IPv4Address) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip in ipaddress.ip_network("169.254.0.0/16"):
        return "link-local (cloud metadata range)"
    if ip in ipaddress.ip_network("100.64.0.0/10"):
        return "carrier-grade NAT"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified or ip in ipaddress.ip_network("0.0.0.0/8"):
        return "unspecified / this network"
    if ip in ipaddress.ip_network("240.0.0.0/4"):
        return "reserved / broadcast"
    if ip.is_private:
        return "private"
    return "reserved"


# ---------------------------------------------------------------- URLs


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # lowercase IDNA name or compressed IP literal, no brackets, no trailing dot
    ip: str | None  # the host when it is an IP literal
    port: int
    redacted: str


def redact_url(url: Any) -> str:
    """``scheme://host[:port]/path`` for logs: no user info, query (``?…``) or fragment; long paths cut."""
    try:
        u = httpx.URL(url) if not isinstance(url, httpx.URL) else url
        host = u.raw_host.decode("ascii", "replace")
        if ":" in host:
            host = f"[{host}]"
        port = f":{u.port}" if u.port is not None else ""
        path = u.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
        if len(path) > 80:
            path = path[:80] + "…"
        query = "?…" if u.query else ""
        return f"{u.scheme}://{host}{port}{path}{query}"
    except Exception:  # noqa: BLE001 - a log helper must never fail
        return f"<unparseable URL, {len(url) if isinstance(url, str) else '?'} chars>"


def _parse(url: Any, policy: UrlPolicy) -> _Target:
    if not isinstance(url, (str, httpx.URL)):
        raise UrlNotAllowedError("the URL must be text")
    if isinstance(url, str):
        text = url.strip()
        if not text:
            raise UrlNotAllowedError("the URL is empty")
        if len(text) > MAX_URL_LENGTH:
            raise UrlNotAllowedError(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if _BAD_URL_CHARS.search(text):
            raise UrlNotAllowedError("the URL contains spaces, control characters or backslashes")
        scheme = text.split(":", 1)[0].lower() if ":" in text else ""
        if scheme not in ("http", "https"):
            raise UrlNotAllowedError("only http and https URLs are allowed")
        try:
            parsed = httpx.URL(text)
        except (httpx.InvalidURL, ValueError, UnicodeError) as e:
            if "IPv4" in str(e):  # 0177.0.0.1: leading zeros read as octal by other parsers
                raise UrlNotAllowedError("write IP addresses in the standard dotted form") from None
            raise UrlNotAllowedError("this is not a valid URL") from None
    else:
        parsed = url
    if parsed.scheme not in ("http", "https"):
        raise UrlNotAllowedError("only http and https URLs are allowed")
    redacted = redact_url(parsed)
    if parsed.userinfo:
        log.warning("url refused: %s has a user name or password", redacted)
        raise UrlNotAllowedError("URLs with a user name or password are not allowed")
    try:
        host = parsed.raw_host.decode("ascii").lower()
        parsed.host  # noqa: B018 - decodes the IDNA labels as httpx will for the Host header: xn--zz fails
    except (UnicodeError, ValueError):
        raise UrlNotAllowedError("the URL's host name is not valid") from None
    if not host:
        raise UrlNotAllowedError("the URL has no host")
    ip = _ip_literal(host)
    if ip is None:
        host = host[:-1] if host.endswith(".") else host
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL.match(x) for x in labels):
            raise UrlNotAllowedError("the URL's host name is not valid")
        if _NUMERIC_LABEL.match(labels[-1]):
            # 2130706433, 0x7f.1, 127.1: other parsers read these as IPv4 addresses
            log.warning("url refused: %s has a non-standard numeric host", redacted)
            raise UrlNotAllowedError("write IP addresses in the standard dotted form")
    else:
        host = ip
    default_port = 443 if parsed.scheme == "https" else 80
    port = parsed.port if parsed.port is not None else default_port
    if not (port in (80, 443, default_port) or 1024 <= port <= 65535):
        log.warning("url refused: %s uses port %s", redacted, port)
        raise UrlNotAllowedError("this port is not allowed")
    if not policy.host_allowed(host):
        log.warning("url refused: %s is not on the allow-list", redacted)
        raise UrlNotAllowedError("this host is not on the server's allow-list")
    return _Target(parsed, host, ip, port, redacted)


def _ip_literal(host: str) -> str | None:
    if "%" in host:
        raise UrlNotAllowedError("IPv6 zone identifiers are not allowed" if ":" in host
                                 else "the URL's host name is not valid")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


# ---------------------------------------------------------------- resolution


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UrlTimeoutError()
    return left


def _lookup(host: str, port: int, deadline: float) -> list[str]:
    """One ``getaddrinfo`` of ``host``, bounded by the deadline (a stuck resolver is left behind)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    worker = threading.Thread(target=run, name="url-fetch-dns", daemon=True)
    worker.start()
    worker.join(_remaining(deadline))
    if worker.is_alive():
        raise UrlTimeoutError("looking up the URL's host took too long")
    if "error" in box:
        raise UrlFetchError("the URL's host name could not be found") from None
    out: list[str] = []
    for family, _type, _proto, _canon, sockaddr in box["infos"]:
        if family in (socket.AF_INET, socket.AF_INET6):
            addr = str(sockaddr[0])
            if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                addr = f"{addr}%{sockaddr[3]}"
            if addr not in out:
                out.append(addr)
    if not out:
        raise UrlFetchError("the URL's host name could not be found")
    return out


def _checked_addresses(target: _Target, policy: UrlPolicy, deadline: float) -> list[str]:
    addresses = [target.ip] if target.ip is not None else _lookup(target.host, target.port, deadline)
    refused = [(a, r) for a in addresses
               if (r := address_refusal(a, allow_loopback=policy.allow_loopback)) is not None]
    if refused:
        log.warning("url refused: %s resolves to %s", target.redacted,
                    ", ".join(f"{a} ({r})" for a, r in refused))
        raise UrlNotAllowedError("this URL points to an address that is not allowed "
                                 "(only public internet addresses can be fetched)")
    return addresses


# ---------------------------------------------------------------- pinned transport


def _dial(address: str, port: int, timeout: float) -> httpcore.NetworkStream:
    """A TCP connection to an IP literal (no name lookup). Tests replace this to watch dials."""
    return httpcore.SyncBackend().connect_tcp(address, port, timeout=timeout)


class _DeadlineStream(httpcore.NetworkStream):
    """Every read / write / TLS handshake waits at most until the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _timeout(self, timeout: float | None, exc: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise exc("total time limit reached")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._timeout(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore network backend that dials only the checked addresses, whatever host it is asked for."""

    def __init__(self, addresses: Sequence[str], port: int, deadline: float, connect_timeout: float) -> None:
        self.addresses = tuple(addresses)
        self.port = port
        self.deadline = deadline
        self.connect_timeout = connect_timeout

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        if port != self.port:  # never reached: httpcore dials the URL's port, which was checked
            raise httpcore.ConnectError("port differs from the checked one")
        error: Exception = httpcore.ConnectError("no address")
        for address in self.addresses:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("total time limit reached")
            try:
                stream = _dial(address, port, min(self.connect_timeout, left))
            except httpcore.ConnectTimeout as e:
                error = e
                continue
            except httpcore.ConnectError as e:
                error = e
                continue
            return _DeadlineStream(stream, self.deadline)
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class _PinnedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool with :class:`_PinnedBackend` (public APIs of both)."""

    def __init__(self, backend: _PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend,
                                             max_connections=1, http1=True, http2=False, retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        resp = self._pool.handle_request(req)
        return httpx.Response(status_code=resp.status, headers=resp.headers,
                              stream=_ResponseStream(resp.stream), extensions=resp.extensions)

    def close(self) -> None:
        self._pool.close()


_ssl_lock = threading.Lock()
_ssl_default: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    global _ssl_default
    with _ssl_lock:
        if _ssl_default is None:
            _ssl_default = httpx.create_ssl_context(verify=True, trust_env=False)
        return _ssl_default


# ---------------------------------------------------------------- fetching


def fetch_image_bytes(url: str, policy: UrlPolicy, *, ssl_context: ssl.SSLContext | None = None) -> bytes:
    """The bytes of the image at ``url`` (http/https), fetched under ``policy``.

    Raises a :class:`~ocr.errors.UrlFetchError` subclass for every refusal or
    failure, never anything else (an unexpected error is logged and reported as
    ``url_fetch_failed``). ``ssl_context``: certificate authorities to trust
    instead of certifi's (tests, private CAs); the name is always verified.
    """
    if not policy.enabled:
        raise UrlDisabledError()
    deadline = time.monotonic() + policy.total_timeout
    try:
        return _fetch(url, policy, deadline, ssl_context or _default_ssl_context())
    except OCRError:
        raise
    except Exception:  # noqa: BLE001 - never a 500: the bug is logged, the user gets a clean error
        log.exception("url fetch failed unexpectedly for %s", redact_url(url))
        raise UrlFetchError() from None


def _fetch(url: str, policy: UrlPolicy, deadline: float, ssl_context: ssl.SSLContext) -> bytes:
    target = _parse(url, policy)
    for hop in range(policy.max_redirects + 1):
        addresses = _checked_addresses(target, policy, deadline)
        location, data = _get(target, addresses, policy, deadline, ssl_context)
        if location is None:
            return data
        if hop == policy.max_redirects:
            log.warning("url refused: %s redirects more than %d times", target.redacted, policy.max_redirects)
            raise UrlFetchError("the URL redirects too many times")
        if len(location) > MAX_URL_LENGTH or _BAD_URL_CHARS.search(location):
            raise UrlFetchError("the server sent an invalid redirect")
        try:
            next_url = target.url.join(location)
        except (httpx.InvalidURL, ValueError, UnicodeError):
            raise UrlFetchError("the server sent an invalid redirect") from None
        log.info("url redirect: %s -> %s", target.redacted, redact_url(next_url))
        target = _parse(next_url, policy)  # the same checks as the first URL
    raise AssertionError("unreachable")  # pragma: no cover


def _get(target: _Target, addresses: list[str], policy: UrlPolicy, deadline: float,
         ssl_context: ssl.SSLContext) -> tuple[str | None, bytes]:
    """One GET to the pinned addresses: (redirect location, b"") or (None, body)."""
    backend = _PinnedBackend(addresses, target.port, deadline, policy.connect_timeout)
    left = _remaining(deadline)
    timeout = httpx.Timeout(left, connect=min(policy.connect_timeout, left))
    headers = {"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"}
    try:
        with httpx.Client(transport=_PinnedTransport(backend, ssl_context), trust_env=False,
                          follow_redirects=False, timeout=timeout, headers=headers) as client:
            with client.stream("GET", target.url) as resp:
                if resp.status_code in REDIRECT_CODES:
                    location = resp.headers.get("location", "").strip()
                    if not location:
                        raise UrlFetchError("the server sent a redirect without a target")
                    return location, b""
                if not 200 <= resp.status_code < 300:
                    log.info("url fetch: %s answered HTTP %d", target.redacted, resp.status_code)
                    raise UrlFetchError(f"the server answered HTTP {resp.status_code}")
                return None, _read_body(resp, target, policy, deadline)
    except OCRError:
        raise
    except (httpx.TimeoutException, httpcore.TimeoutException):
        log.info("url fetch: %s timed out", target.redacted)
        raise UrlTimeoutError() from None
    except (httpx.HTTPError, httpcore.ConnectError, httpcore.NetworkError, httpcore.ProtocolError,
            httpx.StreamError, OSError) as e:
        log.info("url fetch: %s failed: %s", target.redacted, type(e).__name__)
        raise UrlFetchError() from None


def _read_body(resp: httpx.Response, target: _Target, policy: UrlPolicy, deadline: float) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        log.info("url refused: %s declares %s bytes", target.redacted, declared)
        raise UrlTooLargeError(_too_large(policy.max_bytes))
    body = bytearray()
    sniffed = False
    for chunk in resp.iter_raw():
        body += chunk
        if len(body) > policy.max_bytes:
            log.info("url refused: %s sent more than %d bytes", target.redacted, policy.max_bytes)
            raise UrlTooLargeError(_too_large(policy.max_bytes))
        if not sniffed and len(body) >= SNIFF_BYTES:
            _check_type(body, target)
            sniffed = True
        if time.monotonic() > deadline:
            raise UrlTimeoutError()
    if not body:
        raise UrlNotImageError("the URL returned no data")
    if not sniffed:
        _check_type(body, target)
    return bytes(body)


def _check_type(body: bytearray, target: _Target) -> None:
    kind, allowed = sniff_image_type(bytes(body[:SNIFF_BYTES]))
    if allowed:
        return
    log.info("url refused: %s is %s", target.redacted, kind or "not an image")
    names = ", ".join("jpg" if t == "jpeg" else t for t in SNIFF_ALLOWED_TYPES)
    if kind is None:
        raise UrlNotImageError(f"the URL did not return an image (allowed: {names})")
    raise UrlNotImageError(f"the URL returned {kind}, which is not supported; allowed: {names}")


def _too_large(limit: int) -> str:
    return f"the file at the URL is over the {limit / 2**20:g} MB limit"


__all__ = ["UrlPolicy", "fetch_image_bytes", "address_refusal", "redact_url", "MAX_URL_BYTES"]
