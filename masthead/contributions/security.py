"""Two-factor authentication for staff who can see donors.

:class:`DonorDataTwoFactorMiddleware` (after django-otp's ``OTPMiddleware``) guards the Wagtail
admin and the Django admin: a signed-in user who may view contributions, plans or donors but
whose session is not verified with an OTP device is sent to set one up (django-two-factor-auth's
setup wizard) or, when they have one, to :func:`verify`, which asks for a code. Editors without
donor permissions, the login pages and static files are untouched.
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

DONOR_PERMISSIONS = (
    "contributions.view_contribution",
    "contributions.view_recurringplan",
    "contributions.view_donor",
)
PROTECTED_PREFIXES = ("/admin/", "/django-admin/")
OPEN_PREFIXES = (
    "/admin/login/",
    "/admin/logout/",
    "/admin/password_reset/",
    "/admin/jsi18n/",
    "/django-admin/login/",
    "/django-admin/logout/",
)


def can_see_donors(user) -> bool:
    return bool(user.is_active) and any(user.has_perm(p) for p in DONOR_PERMISSIONS)


class DonorDataTwoFactorMiddleware:
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
                and can_see_donors(user)
            ):
                query = urlencode({"next": request.get_full_path()})
                if user_has_device(user, confirmed=True):
                    return redirect(f"{reverse('donor_otp_verify')}?{query}")
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
        "contributions/otp_verify.html",
        {"form": form, "next": target, "devices": devices},
        status=400 if request.method == "POST" else 200,
    )
