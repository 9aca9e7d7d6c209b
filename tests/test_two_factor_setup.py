"""Two-factor authentication for staff: the set-up wizard required on first sign-in (its
buttons, its code box, the name the authenticator app shows), and who must use it — staff who
can open donors and, since issue 13, staff who can open newsletter subscribers."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import qrcode
import qrcode.image.svg
from django.contrib.auth.models import Group, Permission, User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect
from two_factor.utils import get_otpauth_url

SHOTS = Path(__file__).resolve().parent.parent / "data" / "screenshots"
SETUP = "/account/two_factor/setup/?next=/admin/"


@pytest.fixture
def two_factor_on(settings):
    settings.MASTHEAD_STAFF_TWO_FACTOR = True
    settings.OTP_TOTP_ISSUER = "The Lantern"
    return settings


def to_generator_step(client) -> str:
    """Walk the wizard to the step that shows the QR code; returns that page's HTML."""
    page = client.post(SETUP, {"setup_view-current_step": "welcome"})
    if b'name="method-method"' in page.content:
        page = client.post(
            SETUP, {"setup_view-current_step": "method", "method-method": "generator"}
        )
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.django_db
def test_setup_wizard_buttons_and_code_box(client, site, two_factor_on):
    boss = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    client.force_login(boss)
    welcome = client.get("/admin/", follow=True)
    assert welcome.redirect_chain[-1][0].startswith("/account/two_factor/setup/")
    html = welcome.content.decode()
    # No empty submit button (the package's hidden one showed as an empty red button) and no
    # disabled Back on the first step.
    assert not re.search(r'<input[^>]*type="submit"[^>]*value=""', html)
    assert "disabled" not in html
    buttons = re.findall(r"<button[^>]*>(.*?)</button>", html, re.S)
    assert [b.strip() for b in buttons] == ["Next"]
    assert "Cancel" in html

    html = to_generator_step(client)
    box = re.search(r'<input[^>]*name="generator-token"[^>]*>', html).group(0)
    assert 'type="text"' in box and 'inputmode="numeric"' in box
    assert 'autocomplete="one-time-code"' in box and "min=" not in box
    buttons = [b.strip() for b in re.findall(r"<button[^>]*>(.*?)</button>", html, re.S)]
    assert buttons == ["Next", "Back"]
    assert "disabled" not in html

    # A code typed with a leading zero or spaces around it still sets the device up.
    key = base64.b32decode(client.session["django_two_factor-qr_secret_key"])
    done = client.post(
        SETUP, {"setup_view-current_step": "generator", "generator-token": f" {totp(key):06d} "}
    )
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert TOTPDevice.objects.filter(user=boss, confirmed=True).count() == 1


@pytest.mark.django_db
def test_the_authenticator_app_names_the_newsroom_not_the_host(client, site, two_factor_on):
    boss = User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    client.force_login(boss)
    client.get(SETUP)
    html = to_generator_step(client)
    link = re.search(r'href="(otpauth://[^"]+)"', html).group(1).replace("&amp;", "&")
    parts = urlsplit(link)
    assert unquote(parts.path) == "/The Lantern: boss"
    assert parse_qs(parts.query)["issuer"] == ["The Lantern"]
    assert "testserver" not in link and "The Lantern" in html

    # The QR code encodes the same: the image equals one made from the expected URL.
    secret = client.session["django_two_factor-qr_secret_key"]
    qr = client.get("/account/two_factor/qrcode/")
    assert qr.status_code == 200
    expected = get_otpauth_url("boss", secret, "The Lantern", digits=6)
    assert qr.content == svg_qr(expected)
    assert qr.content != svg_qr(get_otpauth_url("boss", secret, "testserver", digits=6))


def svg_qr(text: str) -> bytes:
    """The QR code image the package's view makes for ``text`` (same factory, same save)."""
    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage).save(out)
    return out.getvalue()


def subscriber_viewer() -> User:
    """An editor who may view newsletter subscribers and nothing about donors."""
    group = Group.objects.create(name="Audience")
    group.permissions.set(
        Permission.objects.filter(
            codename__in=["access_admin", "view_subscription", "view_edition", "view_newsletter"]
        )
    )
    user = User.objects.create_user("aud", "aud@example.org", "pw-123456789")
    user.groups.add(group)
    return user


@pytest.mark.django_db
def test_staff_who_can_open_subscribers_must_use_two_factor(client, site, two_factor_on):
    client.force_login(subscriber_viewer())
    for url in (
        "/admin/snippets/newsletters/subscription/",
        "/admin/snippets/newsletters/subscription/?export=csv",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        location = response["Location"]
        assert location.startswith("/account/two_factor/setup/?next="), location
        assert parse_qs(urlsplit(location).query)["next"] == [url]


@pytest.mark.django_db
def test_staff_with_a_device_give_a_code_before_seeing_subscribers(client, site, two_factor_on):
    user = subscriber_viewer()
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    url = "/admin/snippets/newsletters/subscription/?export=csv"
    response = client.get(url)
    assert response["Location"].startswith("/account/verify/?next=")
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"
    verified = client.post("/account/verify/", {"otp_token": code, "next": url})
    assert verified.status_code == 302 and verified["Location"] == url
    export = client.get(url)
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")


@pytest.mark.django_db
def test_editors_who_cannot_open_subscribers_are_not_asked(client, site, two_factor_on):
    group = Group.objects.create(name="Newsletter writers")
    group.permissions.set(
        Permission.objects.filter(codename__in=["access_admin", "view_edition", "change_edition"])
    )
    user = User.objects.create_user("writer", "w@example.org", "pw-123456789")
    user.groups.add(group)
    client.force_login(user)
    assert client.get("/admin/snippets/newsletters/edition/").status_code == 200
    assert client.get("/admin/snippets/newsletters/subscription/").status_code in (302, 403)
    response = client.get("/admin/snippets/newsletters/subscription/")
    assert "/account/" not in response.get("Location", "")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_setup_page_in_chromium_at_phone_and_laptop_widths(page, live_server, site, settings):
    settings.MASTHEAD_STAFF_TWO_FACTOR = True
    settings.OTP_TOTP_ISSUER = "The Lantern"
    User.objects.create_superuser("boss", "boss@example.org", "pw-123456789")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw-123456789")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/account/two_factor/setup/"))
    page.get_by_role("button", name="Next").click()
    if page.locator("input[name=method-method]").count():
        page.check("input[value=generator]")
        page.get_by_role("button", name="Next").click()
    box = page.locator("input[name=generator-token]")
    assert box.get_attribute("type") == "text"
    assert box.get_attribute("inputmode") == "numeric"
    qr_shown = "(() => { const i = document.querySelector('.qr img');"
    qr_shown += " return i.complete && i.naturalWidth > 0; })()"
    page.wait_for_function(qr_shown)
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        # Nothing wider than the screen, and every button has a name.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for button in page.locator("button").all():
            assert button.inner_text().strip()
        page.screenshot(path=str(SHOTS / f"staff-two-factor-setup-{width}.png"), full_page=True)
    # A wrong code: the wizard stays on this step and says so.
    box.fill("000000")
    box.press("Enter")
    expect(page.locator(".errorlist")).to_be_visible()
    page.wait_for_function(qr_shown)  # the same QR code again
    page.screenshot(path=str(SHOTS / "staff-two-factor-setup-wrong-code-390.png"), full_page=True)
    secret = page.locator("code.secret").text_content().strip()  # inside closed <details>
    key = base64.b32decode(secret)
    box = page.locator("input[name=generator-token]")
    box.fill(f"{totp(key):06d}")
    box.press("Enter")  # Enter submits Next, not Back
    page.wait_for_url(re.compile(r"/admin/$"))
    assert TOTPDevice.objects.filter(user__username="boss", confirmed=True).exists()
