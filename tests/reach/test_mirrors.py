"""Mirrors the newsroom manages: the health check against a local HTTP server (and an onion
name through a local SOCKS5 proxy), the /mirrors/ page in English and Russian, and
/mirrors.json in the bypass-censorship list format. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from masthead.core.scheduler import JOBS
from masthead.reach.health import NOT_CHECKED, check_mirrors, probe
from masthead.reach.models import Mirror

pytestmark = pytest.mark.django_db


class MirrorHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's API
        if self.path.startswith("/slow"):
            time.sleep(1.5)
        if self.path.startswith("/fail"):
            self.send_response(500)
        elif self.path.startswith("/hop"):
            self.send_response(302)
            self.send_header("Location", "/ok/")
        elif self.path.startswith("/away"):
            # never followed: the check stops at a redirect to another host
            self.send_response(302)
            self.send_header("Location", "https://blocked-main-domain.invalid/")
        else:
            self.send_response(200)
        body = b"<!doctype html><title>mirror</title>"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_ok_failing_timeout_refused_and_redirects(mirror_server, settings):
    ok = probe(f"{mirror_server}/ok/", timeout=1)
    assert ok.status == "ok" and ok.response_ms is not None and not ok.error
    failing = probe(f"{mirror_server}/fail/", timeout=1)
    assert failing.status == "failing" and failing.error == "HTTP 500"
    assert failing.response_ms is not None
    slow = probe(f"{mirror_server}/slow/", timeout=0.3)
    assert slow.status == "failing" and slow.error == "timed out"
    refused = probe(f"http://127.0.0.1:{closed_port()}/", timeout=1)
    assert refused.status == "failing" and "refused" in refused.error.lower()
    assert probe(f"{mirror_server}/hop/", timeout=1).status == "ok"  # same host: followed
    away = probe(f"{mirror_server}/away/", timeout=1)
    assert away.status == "failing" and "blocked-main-domain.invalid" in away.error


def test_the_job_records_status_time_and_error(mirror_server, settings):
    settings.MASTHEAD_MIRROR_CHECK_TIMEOUT = 0.5
    settings.MASTHEAD_TOR_SOCKS_PROXY = ""
    good = Mirror.objects.create(url=f"{mirror_server}/ok/", kind="cdn")
    bad = Mirror.objects.create(url=f"{mirror_server}/fail/", kind="domain")
    slow = Mirror.objects.create(url=f"{mirror_server}/slow/", kind="static")
    refused = Mirror.objects.create(url=f"http://127.0.0.1:{closed_port()}/", kind="domain")
    onion = Mirror.objects.create(url="http://masthead2exampleonionaddressxxxxxxxxxxxxxxxxxxx.onion/",
                                  kind="onion")
    idle = Mirror.objects.create(url=f"{mirror_server}/fail/idle", kind="domain", active=False)

    JOBS["reach.check_mirrors"].func()

    for mirror in (good, bad, slow, refused, onion, idle):
        mirror.refresh_from_db()
    assert good.status == "ok" and good.last_seen and good.last_checked
    assert good.response_ms is not None and good.last_error == ""
    assert bad.status == "failing" and bad.last_error == "HTTP 500" and bad.last_seen is None
    assert slow.status == "failing" and slow.last_error == "timed out"
    assert refused.status == "failing" and refused.last_checked
    # no Tor proxy: an onion mirror is not checked, and not failing
    assert onion.status == "unknown" and onion.last_error == NOT_CHECKED
    assert onion.last_checked is None
    assert idle.status == "unknown" and idle.last_checked is None  # inactive: left alone
    published = set(Mirror.objects.published())
    assert published == {good, onion}

    # A failing mirror that comes back keeps its last error cleared and its time recorded.
    Mirror.objects.filter(pk=bad.pk).update(url=f"{mirror_server}/ok/again")
    check_mirrors()
    bad.refresh_from_db()
    assert bad.status == "ok" and bad.last_error == "" and bad.last_seen


class Socks5Proxy:
    """Enough of SOCKS5 (RFC 1928) to map one .onion name to the local mirror server."""

    def __init__(self, onion: str, target: tuple[str, int]):
        self.onion, self.target, self.asked = onion, target, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client):
        with client:
            client.recv(3)
            client.sendall(b"\x05\x00")
            head = client.recv(5)
            name = client.recv(head[4]).decode()
            port = struct.unpack(">H", client.recv(2))[0]
            self.asked.append((name, port))
            if name != self.onion:
                client.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
                return
            upstream = socket.create_connection(self.target)
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            with upstream:
                upstream.sendall(client.recv(65536))
                while chunk := upstream.recv(65536):
                    client.sendall(chunk)


def test_onion_mirrors_are_checked_through_the_tor_socks_proxy(mirror_server, settings):
    onion = "masthead2exampleonionaddressxxxxxxxxxxxxxxxxxxx.onion"
    port = int(mirror_server.rsplit(":", 1)[1])
    proxy = Socks5Proxy(onion, ("127.0.0.1", port))
    settings.MASTHEAD_TOR_SOCKS_PROXY = f"socks5h://127.0.0.1:{proxy.port}"
    settings.MASTHEAD_MIRROR_CHECK_TIMEOUT = 2
    up = Mirror.objects.create(url=f"http://{onion}/", kind="onion")
    down = Mirror.objects.create(url="http://another2exampleonionaddressxxxxxxxxxxxxxxxxx.onion/")
    check_mirrors()
    up.refresh_from_db()
    down.refresh_from_db()
    assert up.status == "ok" and up.response_ms is not None
    assert down.status == "failing" and "SOCKS" in down.last_error
    assert (onion, 80) in proxy.asked  # the proxy resolved the name, not us
    proxy.sock.close()


class PageChecker(HTMLParser):
    """Balanced tags, unique ids, the language and one h1: the basics of a valid page."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.h1, self.lang, self.errors = [], [], 0, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag == "h1":
            self.h1 += 1
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def check_page(html: str) -> PageChecker:
    checker = PageChecker()
    checker.feed(html)
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert checker.errors == [] and checker.stack == []
    assert len(checker.ids) == len(set(checker.ids)), checker.ids
    assert checker.h1 == 1
    return checker


@pytest.fixture
def mirrors(db):
    return [
        Mirror.objects.create(url="https://d111.cloudfront.example/", kind="cdn", status="ok"),
        Mirror.objects.create(url="https://lantern-mirror.example/", kind="domain", status="ok"),
        Mirror.objects.create(url="http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/",
                              kind="onion"),
        Mirror.objects.create(url="https://ipfs.example/ipfs/bafyexample/", kind="ipfs",
                              status="ok"),
        Mirror.objects.create(url="https://dead-mirror.example/", kind="domain",
                              status="failing"),
        Mirror.objects.create(url="https://retired.example/", kind="domain", status="ok",
                              active=False),
    ]


def test_mirrors_page_in_english_and_russian(site, mirrors, client):
    response = client.get("/mirrors/")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and not response.cookies
    html = response.content.decode()
    page = check_page(html)
    assert page.lang == "en"
    assert "Mirrors: other ways to reach us" in html
    for url in ("https://d111.cloudfront.example/", "https://lantern-mirror.example/",
                "lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion", "bafyexample"):
        assert url in html
    assert "dead-mirror" not in html and "retired.example" not in html
    assert "In Tor Browser" in html and 'href="/mirrors.json"' in html
    assert 'href="/mirrors/"' in html  # the footer links to it

    ru = client.get("/ru/mirrors/")
    assert ru.status_code == 200
    html_ru = ru.content.decode()
    assert check_page(html_ru).lang == "ru"
    assert "Зеркала" in html_ru and "В Tor Browser" in html_ru
    assert "https://lantern-mirror.example/" in html_ru
    assert 'href="/ru/mirrors/"' in html_ru  # the Russian footer


def test_mirrors_page_without_mirrors_says_so(site, client):
    html = client.get("/mirrors/").content.decode()
    assert "There are no mirrors at the moment." in html
    check_page(html)


def test_editing_a_mirror_rebuilds_the_cached_page(site, client):
    assert "late.example" not in client.get("/mirrors/").content.decode()
    Mirror.objects.create(url="https://late.example/", kind="domain")
    assert "late.example" in client.get("/mirrors/").content.decode()


def test_mirrors_json_in_the_bypass_censorship_format(site, mirrors, client, settings):
    settings.MASTHEAD_BASE_URL = "https://www.lantern.example"
    response = client.get("/mirrors.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["version"] == "2.0"
    [site_entry] = data["sites"]
    assert site_entry["main_domain"] == "lantern.example"
    alternatives = {item["url"]: item for item in site_entry["available_alternatives"]}
    assert set(alternatives) == {
        "https://d111.cloudfront.example/", "https://lantern-mirror.example/",
        "http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/",
        "https://ipfs.example/ipfs/bafyexample/",
    }
    for item in alternatives.values():
        assert set(item) == {"proto", "type", "created_at", "updated_at", "url"}
    onion = alternatives["http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/"]
    assert (onion["proto"], onion["type"]) == ("tor", "eotk")
    assert alternatives["https://d111.cloudfront.example/"]["type"] == "proxy"
    assert alternatives["https://lantern-mirror.example/"]["type"] == "mirror"
    assert alternatives["https://ipfs.example/ipfs/bafyexample/"]["type"] == "ipfs_node"
    # the v1 keys, for older readers of the list
    assert site_entry["available_onions"] == [
        "http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/"]
    assert site_entry["available_ipfs_nodes"] == ["https://ipfs.example/ipfs/bafyexample/"]
    assert sorted(site_entry["available_mirrors"]) == [
        "https://d111.cloudfront.example/", "https://lantern-mirror.example/"]


def test_mirror_urls_must_be_http(db):
    from django.core.exceptions import ValidationError

    mirror = Mirror(url="javascript:alert(1)", kind="domain")
    with pytest.raises(ValidationError):
        mirror.full_clean()
    onion = Mirror(url="http://lantern2examplexxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion/", kind="domain")
    onion.full_clean()
    assert onion.kind == "onion"


def test_admin_lists_mirrors_with_their_health(admin_client, mirrors):
    response = admin_client.get("/admin/snippets/reach/mirror/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "https://d111.cloudfront.example/" in html and "Failing" in html
    assert "Response (ms)" in html


def test_hosts_set_by_environment_are_published_too(site, client, settings):
    """An operator who only sets MASTHEAD_MIRROR_HOSTS and MASTHEAD_ONION_HOST gets them on
    /mirrors/, in /mirrors.json and in every email; an admin row for one is not doubled."""
    from masthead.reach.mirrors import email_mirror_links

    onion = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion"
    settings.MASTHEAD_MIRROR_HOSTS = ["mirror.example", "cdn.example"]
    settings.MASTHEAD_ONION_HOST = onion
    Mirror.objects.create(url="https://cdn.example/", kind="cdn", status="ok")
    html = client.get("/mirrors/").content.decode()
    assert "https://mirror.example/" in html and f"http://{onion}/" in html
    check_page(html)
    data = json.loads(client.get("/mirrors.json").content)
    urls = [item["url"] for item in data["sites"][0]["available_alternatives"]]
    assert sorted(urls) == sorted(
        ["https://cdn.example/", "https://mirror.example/", f"http://{onion}/"]
    )
    assert data["sites"][0]["available_onions"] == [f"http://{onion}/"]
    links = email_mirror_links()
    assert [link["url"] for link in links][-1] == f"http://{onion}/"
    assert len(links) == 3
