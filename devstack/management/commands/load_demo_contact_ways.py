"""`load_demo_contact_ways [--if-empty]`: the demo channel QR codes (渠道活码) and the demo
customers they brought (devstack.demo_contact_ways). With `--if-empty` nothing happens when any
channel QR code exists, so `make run` loads them only once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm.models import ContactWay
from devstack import demo_contact_ways


class Command(BaseCommand):
    help = "Generate the demo channel QR codes and the first touches of demo customers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any channel QR code exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and ContactWay.objects.exists():
            self.stdout.write("Channel QR codes exist already: demo codes not loaded.")
            return
        counts = demo_contact_ways.load()
        self.stdout.write(
            "Demo channel QR codes: "
            + ", ".join(f"{table}={n}" for table, n in sorted(counts.items()))
        )
