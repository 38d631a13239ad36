"""`load_demo_campaigns [--if-empty]`: the demo brand's campaigns in each state, one finished
with conversions and a lift (devstack.demo_campaigns); run after load_demo_segments."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from campaigns.models import Campaign
from devstack.demo_campaigns import campaigns_load


class Command(BaseCommand):
    help = "Create the demo brand's campaigns (draft, scheduled, sending, paused, finished)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any campaign exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Campaign.objects.exists():
            self.stdout.write("Campaigns exist already: demo campaigns not loaded.")
            return
        for name, deliveries in campaigns_load(at=timezone.now()).items():
            self.stdout.write(f"Campaign {name}: {deliveries} deliveries.")
