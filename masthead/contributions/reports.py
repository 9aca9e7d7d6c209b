"""Figures for staff: net totals per currency for a list of contributions (read-only)."""

from __future__ import annotations

from typing import Any

from django.db.models import Sum


def totals_by_currency(queryset) -> list[dict[str, Any]]:
    """Net received (paid, minus refunds) and counts per currency for a contribution list."""
    from .money import format_money

    rows = (
        queryset.filter(paid_at__isnull=False)
        .values("currency")
        .annotate(gross=Sum("amount"), refunded=Sum("refunded_amount"))
        .order_by("currency")
    )
    result = []
    for row in rows:
        count = queryset.filter(paid_at__isnull=False, currency=row["currency"]).count()
        net = (row["gross"] or 0) - (row["refunded"] or 0)
        result.append(
            {
                "currency": row["currency"],
                "count": count,
                "gross": row["gross"] or 0,
                "net": net,
                "net_label": format_money(net, row["currency"]),
                "gross_label": format_money(row["gross"] or 0, row["currency"]),
            }
        )
    return result
