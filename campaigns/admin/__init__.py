"""Operator admin of campaigns, one module per page family: the frequency rules editor, the
campaigns (their form, actions, dry run and report pages), the read-only ledger, and a
customer's recent deliveries on the customer page. Importing the modules registers them."""

from campaigns.admin import campaigns, customers, deliveries, frequency_rules

__all__ = ["campaigns", "customers", "deliveries", "frequency_rules"]
