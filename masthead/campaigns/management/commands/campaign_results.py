"""``masthead campaign_results``: each running campaign's per-variant numbers on the command
line (the same figures as the admin's Results page), after flushing pending counts."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from masthead.campaigns.counters import flush_counters
from masthead.campaigns.models import Campaign
from masthead.campaigns.stats import campaign_results


class Command(BaseCommand):
    help = "Print impressions, clicks, dismissals, contributions and rates per variant."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Include disabled campaigns.")

    def handle(self, *args, all: bool = False, **options):
        written = flush_counters()
        if written:
            self.stderr.write(f"Flushed {written} pending events.")
        campaigns = Campaign.objects.select_related("locale").order_by("placement", "-priority")
        if not all:
            campaigns = campaigns.filter(enabled=True)
        header = (
            f"{'variant':<28} {'impr.':>8} {'clicks':>7} {'dism.':>7} {'contr.':>7} "
            f"{'CTR':>7} {'conv.':>7}  vs control"
        )
        for campaign in campaigns:
            self.stdout.write(
                f"\n{campaign.name} — {campaign.get_placement_display()} "
                f"[{campaign.locale.language_code}]{'' if campaign.enabled else ' (disabled)'}"
            )
            self.stdout.write(header)
            for r in campaign_results(campaign, flush=False):
                test = f" (z={r.z:.2f}, p={r.p_value:.3f})" if r.p_value is not None else ""
                self.stdout.write(
                    f"{r.label[:28]:<28} {r.impressions:>8} {r.clicks:>7} {r.dismissals:>7} "
                    f"{r.conversions:>7} {r.click_rate_pct:>7} {r.conversion_rate_pct:>7}  "
                    f"{r.verdict}{test}"
                )
