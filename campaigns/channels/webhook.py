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
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from campaigns.channels import chunks
from campaigns.models import (
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.dispatch import IN_FLIGHT

logger = logging.getLogger(__name__)

# Posts per ChannelSend: what one worker sends in a row before the next send's turn.
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
    groups_by_sender = False

    def split(self, delivery_ids: list[int]) -> Iterator[list[int]]:
        return chunks(delivery_ids, POSTS_PER_SEND)

    def run(self, send: ChannelSend) -> None:
        now = timezone.now()
        due = send.deliveries.filter(status__in=IN_FLIGHT).filter(
            Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        )
        campaign = send.campaign
        send.attempts += 1
        send.attempted_at = now
        send.save(update_fields=["attempts", "attempted_at"])
        with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as client:
            for delivery in due.order_by("id").select_related("variant"):
                body = json.dumps(
                    {
                        "delivery_id": delivery.pk,
                        "campaign_id": campaign.pk,
                        "campaign_name": campaign.name,
                        "customer_id": delivery.customer_id,
                        "variant": delivery.variant.name if delivery.variant else None,
                        "content": send.content,
                    },
                    ensure_ascii=False,
                ).encode()
                delivery.attempts += 1
                delivery.save(update_fields=["attempts"])  # before the post: see the module
                _post(client, campaign.webhook_url, body, delivery)
        if not send.deliveries.filter(status__in=IN_FLIGHT).exists():
            send.state = ChannelSendState.FINISHED
            send.answered_at = timezone.now()
            send.save(update_fields=["state", "answered_at"])


def _post(client: httpx.Client, url: str, body: bytes, delivery: Delivery) -> None:
    at = int(timezone.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "X-CRM-Signature": signature(body, at),
        "Idempotency-Key": f"delivery-{delivery.pk}",
    }
    status: int | None = None
    problem = ""
    try:
        status = client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as error:
        problem = type(error).__name__
    now = timezone.now()
    if status is not None and 200 <= status < 300:
        _settle(delivery, DeliveryStatus.SENT, "", now, "")
    elif status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES:
        _settle(
            delivery, DeliveryStatus.FAILED, DeliveryReason.CHANNEL_ERROR, None, f"HTTP {status}"
        )
    else:
        failure = f"HTTP {status}" if status is not None else problem
        if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            _settle(
                delivery, DeliveryStatus.DEAD_LETTER, DeliveryReason.CHANNEL_ERROR, None, failure
            )
        else:
            Delivery.objects.filter(pk=delivery.pk).update(
                retry_at=now + retry_delay(delivery.attempts), error=failure
            )
    logger.info(
        "webhook.posted",
        extra={"delivery_id": delivery.pk, "status": status, "attempts": delivery.attempts},
    )


def _settle(
    delivery: Delivery, status: str, reason: str, sent_at: datetime | None, error: str
) -> None:
    Delivery.objects.filter(pk=delivery.pk, status__in=IN_FLIGHT).update(
        status=status, reason=reason, sent_at=sent_at, error=error, retry_at=None
    )
