"""Two-factor authentication for staff who can see readers' personal data.

Apps name the permissions that open decrypted personal data (donors, subscribers) with
:func:`require_two_factor_for`, from their ``AppConfig.ready()``; core knows no app.
:class:`StaffTwoFactorMiddleware` (after django-otp's ``OTPMiddleware``) guards the Wagtail
admin and the Django admin: a signed-in user holding any of those permissions whose session is
not verified with an OTP device is sent to set one up (django-two-factor-auth's setup wizard)
or, when they have one, to :func:`verify`, which asks for a code. Other editors, the login
pages and static files are untouched.

The setup wizard and its QR code are django-two-factor-auth's, with one change
(:class:`SetupView`, :class:`QRCodeView`): the authenticator app labels the account with the
newsroom's name (``OTP_TOTP_ISSUER``), not with the host name the request came in on.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, match_token, user_has_device
from django_otp import login as otp_login
from two_factor.utils import get_otpauth_url, totp_digits
from two_factor.views import core as two_factor_views

PROTECTED_PREFIXES = ("/admin/", "/django-admin/")
OPEN_PREFIXES = (
    "/admin/login/",
    "/admin/logout/",
    "/admin/password_reset/",
    "/admin/jsi18n/",
    "/django-admin/login/",
    "/django-admin/logout/",
)

_protected_permissions: set[str] = set()


def require_two_factor_for(*permissions: str) -> None:
    """Staff holding any of ``permissions`` ("app_label.codename") must use two factors."""
    _protected_permissions.update(permissions)


def protected_permissions() -> frozenset[str]:
    return frozenset(_protected_permissions)


def needs_two_factor(user) -> bool:
    """Whether ``user`` can open personal data and so must verify a second factor."""
    return bool(user.is_active) and any(user.has_perm(p) for p in sorted(_protected_permissions))


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if (
            settings.MASTHEAD_STAFF_TWO_FACTOR
            and path.startswith(PROTECTED_PREFIXES)
            and not path.startswith(OPEN_PREFIXES)
        ):
            user = getattr(request, "user", None)
            if (
                user is not None
                and user.is_authenticated
                and not user.is_verified()
                and needs_two_factor(user)
            ):
                query = urlencode({"next": request.get_full_path()})
                if user_has_device(user, confirmed=True):
                    return redirect(f"{reverse('staff_otp_verify')}?{query}")
                return redirect(f"{reverse('two_factor:setup')}?{query}")
        return self.get_response(request)


class VerifyForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code from your authenticator app (or a backup code)"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.device = None

    def clean_otp_token(self) -> str:
        token = "".join(self.cleaned_data["otp_token"].split())
        # Tries each of the user's confirmed devices; they throttle repeated failures.
        self.device = match_token(self.user, token)
        if self.device is None:
            raise forms.ValidationError(_("That code is not valid. Try the current one."))
        return token


@never_cache
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """Ask a signed-in staff member for a one-time code; on success the session is verified."""
    target = request.GET.get("next") or request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "/admin/"
    if request.user.is_verified():
        return redirect(target)
    form = VerifyForm(request.user, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        otp_login(request, form.device)
        return redirect(target)
    devices = list(devices_for_user(request.user))
    return render(
        request,
        "two_factor/verify.html",
        {"form": form, "next": target, "devices": devices},
        status=400 if request.method == "POST" else 200,
    )


def issuer() -> str:
    """The name an authenticator app shows above the account: the newsroom's."""
    return settings.OTP_TOTP_ISSUER


def one_time_code_input() -> forms.TextInput:
    """A text box for a one-time code: phones show digits, password managers fill it, and
    there is no number spinner (the package's IntegerField renders ``type=number``)."""
    return forms.TextInput(
        attrs={
            "inputmode": "numeric",
            "autocomplete": "one-time-code",
            "maxlength": str(totp_digits()),
            "autofocus": "autofocus",
            "spellcheck": "false",
        }
    )


class SetupView(two_factor_views.SetupView):
    def get_form(self, step=None, **kwargs):
        form = super().get_form(step=step, **kwargs)
        if "token" in form.fields:
            form.fields["token"].widget = one_time_code_input()
            form.fields["token"].label = _("Code from your authenticator app")
        return form

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form, **kwargs)
        if "otpauth_url" in context:
            username = self.request.user.get_username()
            context["issuer"] = issuer()
            context["otpauth_url"] = get_otpauth_url(
                username, context["secret_key"], issuer(), digits=totp_digits()
            )
        return context


class QRCodeView(two_factor_views.QRGeneratorView):
    def get_issuer(self) -> str:
        return issuer()
