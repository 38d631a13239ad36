"""Channels a campaign sends through. Each adapter makes the calls of a `ChannelSend` (a group
of reserved deliveries, laid out as `campaigns.services.dispatch.call_layout` says), reading
consent right before each and recording the outcomes through
`campaigns.services.channel_calls`; the dispatch service runs each call under a lock and
records its attempt first, so an adapter never runs the same call twice at once."""

from typing import Any, Protocol

from campaigns.models import Channel, ChannelSend


class ChannelAdapter(Protocol):
    # A WeCom task carries one text to all its receivers; webhook posts carry one each.
    one_text_per_call: bool
    # Deliveries per call (per ChannelSend) at most.
    size: int

    def run(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> None:
        """Send `deliveries` (the call's deliveries still to send, with their texts; see
        `dispatch.Attempt`) and record the outcomes. `send.attempts` counts this attempt."""
        ...


def channel_for(channel: str) -> ChannelAdapter:
    # Imported when a call is made, so that the web processes, which import this package, do
    # not load the platforms' client libraries (wechatpy, httpx) at start.
    from campaigns.channels import webhook, wecom

    adapters: dict[str, ChannelAdapter] = {
        Channel.WECOM_CUSTOMER: wecom.WeComCustomerChannel(),
        Channel.WECOM_GROUP: wecom.WeComGroupChannel(),
        Channel.WEBHOOK: webhook.WebhookChannel(),
    }
    return adapters[channel]
