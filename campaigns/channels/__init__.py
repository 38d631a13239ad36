"""Channels a campaign sends through. Each adapter turns a `ChannelSend` (a group of claimed
deliveries with one text) into calls to its platform and records the outcomes; the dispatch
service (`campaigns.services.dispatch`) decides what is claimed and runs each send under a
lock, so an adapter never runs the same send twice at once."""

from collections.abc import Iterator
from typing import Protocol

from campaigns.models import Channel, ChannelSend


class ChannelAdapter(Protocol):
    # WeCom bulk messages go out from the staff member who owns the customer.
    groups_by_sender: bool

    def split(self, delivery_ids: list[int]) -> Iterator[list[int]]:
        """Deliveries of one text in the groups one call (one ChannelSend) takes."""
        ...

    def run(self, send: ChannelSend) -> None:
        """Send what is still to be sent of `send` and record the outcomes."""
        ...


def channel_for(channel: str) -> ChannelAdapter:
    from campaigns.channels import webhook, wecom

    adapters: dict[str, ChannelAdapter] = {
        Channel.WECOM_CUSTOMER: wecom.WeComCustomerChannel(),
        Channel.WEBHOOK: webhook.WebhookChannel(),
    }
    if channel not in adapters:
        raise NotImplementedError(f"channel {channel} has no adapter yet")
    return adapters[channel]


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
