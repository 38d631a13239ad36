"""Operator admin of campaigns, one module per page family: the frequency rules editor, the
campaigns (their form, actions, dry run and report pages) and the read-only ledger. Importing
the modules registers them. `customers` holds this app's section of the customer page, which
console.admin composes."""

from campaigns.admin import campaigns, deliveries, frequency_rules

__all__ = ["campaigns", "deliveries", "frequency_rules"]
