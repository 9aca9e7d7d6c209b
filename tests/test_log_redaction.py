"""Link tokens never reach a log: gunicorn's access log (``masthead run``) and Django's
request and server loggers."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from masthead.contributions.tokens import manage_token
from masthead.newsletters.tokens import make_confirm_token, make_unsubscribe_token

SECRET_QUERY = "session_id=cs_test_secretsession"


def _tokened_urls() -> list[tuple[str, str]]:
    """(url, token) for every kind of link that carries a token."""
    subscription = SimpleNamespace(pk=41, subscriber=SimpleNamespace(email_index="ab12" * 8))
    confirm = make_confirm_token(subscription)
    unsubscribe = make_unsubscribe_token(999_999)
    manage = manage_token(SimpleNamespace(pk=999_999, email_index="cd34" * 8))
    checkout = "c9f1d7e2a4b84c6f9e0d1a2b3c4d5e6f"
    return [
        (f"/newsletter/confirm/{confirm}/", confirm),
        (f"/ru/newsletter/confirm/{confirm}/", confirm),
        (f"/newsletter/unsubscribe/{unsubscribe}/", unsubscribe),
        (f"/support/manage/{manage}/", manage),
        (f"/support/checkout/{checkout}/thanks/?{SECRET_QUERY}", checkout),
        (f"/support/checkout/{checkout}/return/?{SECRET_QUERY}", checkout),
        (f"/support/sandbox/{checkout}/", checkout),
    ]


def _secrets(token: str) -> list[str]:
    return [token, token[:12], "cs_test_secretsession"]


def test_gunicorn_access_log_redacts_link_tokens():
    from gunicorn.config import Config
    from gunicorn.util import load_class

    # The class ``masthead run`` passes as --logger-class, loaded the way gunicorn loads it.
    logger_class = load_class(
        "masthead.core.logredact.GunicornLogger", section="gunicorn.loggers"
    )
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %(q)s {raw_uri}e')
    log = logger_class(cfg)
    stream = io.StringIO()
    log.access_log.addHandler(logging.StreamHandler(stream))

    for url, _token in _tokened_urls():
        path, _, query = url.partition("?")
        environ = {
            "REQUEST_METHOD": "GET", "RAW_URI": url, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.9",
            "HTTP_REFERER": f"https://news.example.org{url}",
        }
        response = SimpleNamespace(status="200 OK", sent=512, headers=[])
        request = SimpleNamespace(headers=[("REFERER", f"https://news.example.org{url}")])
        log.access(response, request, environ, timedelta(milliseconds=12))

    text = stream.getvalue()
    assert text.count("\n") == len(_tokened_urls())
    assert "[redacted]" in text and "/newsletter/unsubscribe/[redacted]/" in text
    for _url, token in _tokened_urls():
        for secret in _secrets(token):
            assert secret not in text, (secret, text)
    # Other URLs are logged as they are.
    log.access(SimpleNamespace(status="200 OK", sent=1, headers=[]), SimpleNamespace(headers=[]),
               {"REQUEST_METHOD": "GET", "RAW_URI": "/search/?q=river", "PATH_INFO": "/search/",
                "QUERY_STRING": "q=river", "SERVER_PROTOCOL": "HTTP/1.1"},
               timedelta(milliseconds=1))
    assert '"GET /search/?q=river HTTP/1.1"' in stream.getvalue()


@pytest.mark.django_db
def test_django_request_and_server_logs_redact_link_tokens(client, caplog, demo):
    caplog.set_level(logging.INFO, logger="django.request")
    server = logging.getLogger("django.server")
    server.addHandler(caplog.handler)  # django.server does not propagate to the root
    try:
        for url, _token in _tokened_urls():
            response = client.get(url)
            # runserver's access line, as django.core.servers.basehttp logs it
            server.info('"%s" %s %s', f"GET {url} HTTP/1.1", response.status_code, 10,
                        extra={"status_code": response.status_code})
            # and a 4xx for that URL, as django.utils.log.log_response logs it
            logging.getLogger("django.request").warning(
                "Not Found: %s", url.split("?")[0], extra={"status_code": 404}
            )
    finally:
        server.removeHandler(caplog.handler)
    text = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert "[redacted]" in text
    for _url, token in _tokened_urls():
        for secret in _secrets(token):
            assert secret not in text, (secret, text)
