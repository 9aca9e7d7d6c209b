"""Is a mirror up? One HTTP GET from the server, with a short timeout.

:func:`probe` is the network part (no database): it fetches the mirror's URL, follows
redirects only while they stay on the same host (a mirror that sends readers to another
host — often the blocked main domain — is not working), and says OK for a 2xx answer.
Onion mirrors are reached through the Tor SOCKS proxy in ``MASTHEAD_TOR_SOCKS_PROXY``
(SOCKS5 with the host name resolved by the proxy, as ``socks5h://`` means); without one they
are not checked at all. :func:`check_mirrors` probes every active mirror concurrently and
then records the results — never inside a transaction that waits on the network.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils import timezone

from .models import Mirror

MAX_REDIRECTS = 3
USER_AGENT = "Masthead mirror check"


@dataclass
class Probe:
    status: str  # Mirror.Status value
    response_ms: int | None = None
    error: str = ""


class SocksError(OSError):
    pass


def _parse_proxy(proxy: str) -> tuple[str, int]:
    parts = urlsplit(proxy if "://" in proxy else f"socks5h://{proxy}")
    if parts.scheme not in ("socks5", "socks5h") or not parts.hostname:
        raise SocksError(f"MASTHEAD_TOR_SOCKS_PROXY is not a socks5h://host:port URL: {proxy}")
    return parts.hostname, parts.port or 9050


def socks5_connect(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``host:port`` through a SOCKS5 proxy (RFC 1928, no auth); the
    proxy resolves the name, which is what makes .onion names work through Tor."""
    sock = socket.create_connection(_parse_proxy(proxy), timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x00")
        if _recv(sock, 2) != b"\x05\x00":
            raise SocksError("the SOCKS proxy refused our greeting")
        name = host.encode("idna")
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        reply = _recv(sock, 4)
        if reply[1] != 0:
            raise SocksError(f"the SOCKS proxy could not connect (code {reply[1]})")
        kind = reply[3]
        length = {1: 4, 4: 16}.get(kind) or _recv(sock, 1)[0]
        _recv(sock, length + 2)  # bound address and port: not needed
        return sock
    except BaseException:
        sock.close()
        raise


def _recv(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise SocksError("the SOCKS proxy closed the connection")
        data += chunk
    return data


def _connection(url: str, timeout: float, proxy: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    if proxy:
        conn._create_connection = (  # noqa: SLF001 - http.client's documented-in-source hook
            lambda address, timeout_, source=None: socks5_connect(proxy, *address, timeout_)
        )
    return conn


def _short(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    if isinstance(error, (socket.timeout, TimeoutError)):
        text = "timed out"
    return text[:300]


def probe(url: str, *, timeout: float | None = None, proxy: str = "") -> Probe:
    """GET ``url`` and say whether it works (2xx, same-host redirects followed)."""
    timeout = settings.MASTHEAD_MIRROR_CHECK_TIMEOUT if timeout is None else timeout
    host = urlsplit(url).hostname
    started = time.monotonic()
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn = _connection(url, timeout, proxy)
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
                response = conn.getresponse()
                response.read(65536)
            finally:
                conn.close()
            elapsed = int((time.monotonic() - started) * 1000)
            location = response.getheader("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                target = urljoin(url, location)
                if urlsplit(target).hostname != host:
                    return Probe(
                        Mirror.Status.FAILING, elapsed,
                        f"redirects to another host: {urlsplit(target).hostname}"[:300],
                    )
                url = target
                continue
            if 200 <= response.status < 300:
                return Probe(Mirror.Status.OK, elapsed)
            return Probe(Mirror.Status.FAILING, elapsed, f"HTTP {response.status}")
        return Probe(Mirror.Status.FAILING, elapsed, "too many redirects")
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Probe(Mirror.Status.FAILING, None, _short(error))


def probe_mirror(mirror: Mirror) -> Probe | None:
    """Probe one mirror; None when it cannot be checked from here (an onion, no proxy)."""
    if mirror.is_onion:
        if not settings.MASTHEAD_TOR_SOCKS_PROXY:
            return None
        return probe(mirror.url, proxy=settings.MASTHEAD_TOR_SOCKS_PROXY)
    return probe(mirror.url)


NOT_CHECKED = "Not checked: onion mirrors need a Tor SOCKS proxy (MASTHEAD_TOR_SOCKS_PROXY)."


def record(mirror: Mirror, result: Probe | None) -> None:
    """Write one mirror's check result (a single UPDATE, no network)."""
    now = timezone.now()
    if result is None:
        changes = {"status": Mirror.Status.UNKNOWN, "last_error": NOT_CHECKED}
    elif result.status == Mirror.Status.OK:
        changes = {
            "status": Mirror.Status.OK, "last_seen": now, "last_checked": now,
            "response_ms": result.response_ms, "last_error": "",
        }
    else:
        changes = {
            "status": result.status, "last_checked": now,
            "response_ms": result.response_ms, "last_error": result.error,
        }
    Mirror.objects.filter(pk=mirror.pk).update(**changes)
    for field, value in changes.items():
        setattr(mirror, field, value)


def check_mirrors(mirrors=None) -> list[Mirror]:
    """Check every active mirror (at most eight at a time) and record the results. When the
    set of published mirrors changes, cached reader pages are rebuilt (the /mirrors/ page)."""
    from masthead.core.pagecache import invalidate_pages

    mirrors = list(Mirror.objects.filter(active=True) if mirrors is None else mirrors)
    if not mirrors:
        return []
    before = set(Mirror.objects.published().values_list("pk", flat=True))
    with ThreadPoolExecutor(max_workers=min(8, len(mirrors))) as pool:
        results = list(pool.map(probe_mirror, mirrors))
    for mirror, result in zip(mirrors, results, strict=True):
        record(mirror, result)
    if set(Mirror.objects.published().values_list("pk", flat=True)) != before:
        invalidate_pages()
    return mirrors
