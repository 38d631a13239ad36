"""The customer-removal lock. Customer rows are removed only by merges (crm.services.merges)
and by operators deleting customers (crm.services.customers). Writers of rows that point at
customers without a foreign-key constraint (orders; segments' metrics, predictions and
members) hold the lock shared while they check that their customers exist and write; removals
hold it exclusively. One lock, never a row lock: taking row locks on a batch's customers cost
as much as the foreign key did. Merges are rare and short, so the writers they hold up wait
milliseconds."""

from core.locks import Lock, xact_lock


def customers_removal_lock(*, exclusive: bool) -> None:
    """Take the customer-removal lock until the end of the current transaction."""
    xact_lock(Lock.CUSTOMER_REMOVAL, shared=not exclusive)
