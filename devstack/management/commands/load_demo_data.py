"""`load_demo_data [--customers 20000] [--seed 7] [--if-empty]`: write the demo brand's data.

With `--if-empty` nothing happens when any customer exists, so `make run` loads it only once.
"""

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from crm.models import Customer
from devstack import demo


class Command(BaseCommand):
    help = "Generate deterministic demo data (customers, orders, tags, groups, consent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--orders-per-customer",
            type=float,
            default=2.5,
            help="Mean orders per customer, prospects included (benchmarks use 10).",
        )
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="Reference date (YYYY-MM-DD); history covers the two years before it. "
            "Default: today in the business time zone.",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any customer exists."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Customer.objects.exists():
            self.stdout.write("Customers exist already: demo data not loaded.")
            return
        started = time.monotonic()
        counts = demo.generate(
            customers=options["customers"],
            seed=options["seed"],
            orders_per_customer=options["orders_per_customer"],
            as_of=options["as_of"] or timezone.localdate(),
            stdout=self.stdout,
            progress=not options["no_progress"],
        )
        self.stdout.write(
            f"Loaded demo data for {counts.get('customers', 0)} customers "
            f"in {time.monotonic() - started:.1f} s."
        )
