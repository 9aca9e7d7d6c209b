"""System checks for sending: ``manage.py check --deploy`` fails when a configured email
provider's webhook could be forged (no secret or signing key) or is unknown; ``manage.py
check`` fails on DKIM settings that cannot sign (a malformed key, no selector)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_email_webhooks(app_configs=None, **kwargs) -> list[Error]:
    from .webhooks import PROVIDERS, configured_providers, missing_package, route_is_served

    errors = []
    for name in configured_providers():
        provider = PROVIDERS.get(name)
        if provider is None:
            errors.append(Error(
                f"MASTHEAD_EMAIL_WEBHOOK_PROVIDERS names {name!r}, which has no webhook "
                "route in Masthead.",
                hint=f"Choose from: {', '.join(sorted(PROVIDERS))} (or 'none').",
                id="newsletters.E001",
            ))
        elif missing_package(provider):
            errors.append(Error(
                f"The {name} email webhook needs the {provider.needs} package, which is not "
                "installed: it is not served and bounces are not handled.",
                hint=f'pip install "django-anymail[{name.replace("_", "-")}]"',
                id="newsletters.E003",
            ))
        elif not route_is_served(name, "tracking"):
            if provider.signature_required:
                hint = (f"Set ANYMAIL_{provider.esp_name}_WEBHOOK_SIGNING_KEY to the key "
                        "from the provider's dashboard.")
            else:
                hint = ("Set ANYMAIL_WEBHOOK_SECRET=user:password (a long random password) "
                        "and put it in the webhook URL you give the provider.")
            errors.append(Error(
                f"The {name} email webhook has no secret or signing key: anyone could forge "
                "its bounces, so it is not served and bounces are not handled.",
                hint=hint,
                id="newsletters.E002",
            ))
    return errors


@register()
def check_dkim(app_configs=None, **kwargs) -> list[Error]:
    from .dkim import check_settings

    return [
        Error(
            problem,
            hint="MASTHEAD_DKIM_PRIVATE_KEY takes a PEM private key (RSA of 2048 bits, or "
            "Ed25519), e.g. from `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`, "
            "or an RSA and an Ed25519 key one after the other to sign with both, with "
            "MASTHEAD_DKIM_SELECTOR naming one selector per key; see docs/newsletters.md, DKIM.",
            id="newsletters.E004",
        )
        for problem in check_settings()
    ]
