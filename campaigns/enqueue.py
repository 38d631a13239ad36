"""The tasks the campaign engine's services queue, each published once the caller's transaction
commits (`core.enqueue`; at once in a task, which runs outside a transaction): one typed
function per task of `campaigns.tasks`, by its stable name, with ids only. Services import this
module, never the tasks module."""

from core.enqueue import enqueue_on_commit


def campaign_plan(*, campaign_id: int) -> None:
    """`campaigns.plan`: plan a one-shot campaign's deliveries."""
    enqueue_on_commit("campaigns.plan", campaign_id)


def campaign_reserve(*, campaign_id: int) -> None:
    """`campaigns.reserve`: reserve the campaign's due deliveries, batch after batch."""
    enqueue_on_commit("campaigns.reserve", campaign_id)


def channel_sends_run(*, channel_send_ids: list[int]) -> None:
    """`campaigns.run_channel_sends`: make these calls."""
    enqueue_on_commit("campaigns.run_channel_sends", channel_send_ids)


def conversions_attribute(*, customer_ids: list[int]) -> None:
    """`campaigns.attribute_customers`: attribute again these customers' conversions."""
    enqueue_on_commit("campaigns.attribute_customers", customer_ids)
