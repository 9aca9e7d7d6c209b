"""Demo content for contributions: editable preset amounts and a little giving history.

``load_demo()`` is idempotent (``masthead setup --demo`` and the ``demo`` test fixture call
it): presets per frequency and currency, and a few past sandbox contributions from two demo
supporters so the Giving admin has something to show. No email is sent.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from masthead.core.crypto import email_index

from .models import AmountPreset, Contribution, Donor, RecurringPlan
from .options import default_presets, money_config


@transaction.atomic
def load_demo() -> None:
    for currency in money_config().currencies:
        for frequency, (amounts, suggested) in default_presets(currency).items():
            for position, amount in enumerate(amounts):
                if not currency.accepts(amount):
                    continue  # e.g. ¥10 below a JPY minimum: editors set their own
                AmountPreset.objects.get_or_create(
                    frequency=frequency,
                    currency=currency.code,
                    amount=amount,
                    defaults={"suggested": amount == suggested, "sort_order": position},
                )
    _demo_bank_account()
    if Contribution.objects.filter(checkout_ref__startswith="demo-").exists():
        return
    now = timezone.now()
    ada = _donor("ada.reader@example.org", "Ada Reader")
    sam = _donor("sam.supporter@example.org", "")
    Contribution.objects.create(
        donor=ada, frequency="once", amount=2500, currency="EUR", provider="sandbox",
        checkout_ref="demo-1", payment_ref="demo-pay-1", paid_at=now - dt.timedelta(days=40),
        created_at=now - dt.timedelta(days=40), status="succeeded", announced_at=now,
        receipt_sent_at=now, source="banner:demo",
    )  # fmt: skip
    plan = RecurringPlan.objects.create(
        donor=sam, provider="sandbox", provider_ref="demo-sub-1", frequency="monthly",
        amount=500, currency="USD", status="active", activated_at=now - dt.timedelta(days=62),
        last_paid_at=now - dt.timedelta(days=2), created_at=now - dt.timedelta(days=62),
    )  # fmt: skip
    for period, days in enumerate((62, 32, 2), start=1):
        Contribution.objects.create(
            donor=sam, plan=plan, frequency="monthly", amount=500, currency="USD",
            provider="sandbox", checkout_ref=f"demo-{period + 1}",
            payment_ref=f"demo-pay-{period + 1}", is_renewal=period > 1,
            paid_at=now - dt.timedelta(days=days), created_at=now - dt.timedelta(days=days),
            status="succeeded", announced_at=now, receipt_sent_at=now,
            source="appeal:demo" if period == 1 else "",
        )  # fmt: skip


def _demo_bank_account() -> None:
    """Example account details for the demo's bank-transfer pledges (not a real account)."""
    from .bankaccount import BankAccountSettings

    account = BankAccountSettings.load()
    if account.account_holder:
        return
    account.account_holder = "The Lantern Media Foundation (demo)"
    account.iban = "DE89370400440532013000"  # the standard example IBAN
    account.swift = "COBADEFFXXX"
    account.bank_name = "Example Bank"
    account.other_details = "Demo details: do not send money."
    account.save()


def _donor(email: str, name: str) -> Donor:
    donor = Donor.objects.filter(email_index=email_index(email)).first()
    if donor is None:
        donor = Donor(name=name)
        donor.set_email(email)
        donor.save()
    return donor
