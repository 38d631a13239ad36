"""The webhook channel: one signed JSON POST per delivery to the campaign's URL.

Signature: header `X-CRM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed
with WEBHOOK_SIGNING_SECRET; receivers should refuse a stale `t`. Header `Idempotency-Key`
names the delivery: a post whose answer was lost (a timeout, a crash) is posted again with the
same key, and the receiver must act on a key once. A 2xx is sent; any other 4xx but 408 and
429 is a refusal, not retried; the rest are retried after WEBHOOK_RETRY_BASE_SECONDS, doubling,
until WEBHOOK_MAX_ATTEMPTS, when the delivery becomes a dead letter."""

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from campaigns.models import (
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.dispatch import consent_hold

logger = logging.getLogger(__name__)

# A webhook delivery is in flight while reserved: its call has not settled it yet.
IN_FLIGHT = (DeliveryStatus.RESERVED,)
# Posts per ChannelSend: what one worker sends in a row before the next call's turn.
POSTS_PER_SEND = 100
RETRIED_STATUSES = frozenset({408, 429})


def signature(body: bytes, at: int) -> str:
    digest = hmac.new(
        settings.WEBHOOK_SIGNING_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={at},v1={digest}"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed post: the base, doubling each time."""
    return timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


class WebhookChannel:
    one_text_per_call = False
    size = POSTS_PER_SEND

    def run(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> None:
        now = timezone.now()
        campaign = send.campaign
        variant_names = dict(campaign.variants.values_list("pk", "name"))
        due = [row for row in deliveries if row["retry_at"] is None or row["retry_at"] <= now]
        settled = 0
        with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as client:
            for row in due:
                body = json.dumps(
                    {
                        "delivery_id": row["id"],
                        "campaign_id": campaign.pk,
                        "campaign_name": campaign.name,
                        "customer_id": row["customer_id"],
                        "variant": variant_names.get(row["variant_id"]),
                        "content": row["text"],
                    },
                    ensure_ascii=False,
                ).encode()
                attempts = row["attempts"] + 1
                # Counted before the post: see the module.
                Delivery.objects.filter(pk=row["id"]).update(attempts=attempts)
                # Consent read last, held across the post: see dispatch.consent_hold.
                with consent_hold(send=send, deliveries=[row]) as allowed:
                    if allowed:
                        settled += _post(client, campaign.webhook_url, body, row["id"], attempts)
                    else:
                        settled += 1  # suppressed: opted out
        if settled == len(deliveries):
            send.state = ChannelSendState.FINISHED
            send.answered_at = timezone.now()
            send.save(update_fields=["state", "answered_at"])


def _post(client: httpx.Client, url: str, body: bytes, delivery_id: int, attempts: int) -> bool:
    """Post one delivery and record the outcome; answers whether it is settled (not to be
    retried)."""
    at = int(timezone.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "X-CRM-Signature": signature(body, at),
        "Idempotency-Key": f"delivery-{delivery_id}",
    }
    status: int | None = None
    problem = ""
    try:
        status = client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as error:
        problem = type(error).__name__
    now = timezone.now()
    logger.info(
        "webhook.posted",
        extra={"delivery_id": delivery_id, "status": status, "attempts": attempts},
    )
    if status is not None and 200 <= status < 300:
        _settle(delivery_id, DeliveryStatus.SENT, "", now, "")
        return True
    if status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES:
        _settle(
            delivery_id, DeliveryStatus.FAILED, DeliveryReason.CHANNEL_ERROR, None, f"HTTP {status}"
        )
        return True
    failure = f"HTTP {status}" if status is not None else problem
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        _settle(
            delivery_id, DeliveryStatus.DEAD_LETTER, DeliveryReason.CHANNEL_ERROR, None, failure
        )
        return True
    Delivery.objects.filter(pk=delivery_id).update(
        retry_at=now + retry_delay(attempts), error=failure
    )
    return False


def _settle(
    delivery_id: int, status: str, reason: str, sent_at: datetime | None, error: str
) -> None:
    Delivery.objects.filter(pk=delivery_id, status__in=IN_FLIGHT).update(
        status=status, reason=reason, sent_at=sent_at, error=error, retry_at=None
    )
