"""Campaign engine: pushes to segments over WeCom (to customers and to group chats) and
webhooks, planned into a deliveries ledger with a holdout and variants, reserved against the
frequency caps, dispatched at most once, and attributed to the orders that followed. Built on
crm and segments."""
