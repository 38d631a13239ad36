"""The webhook channel: one signed JSON POST per delivery to the campaign's URL.

Signature: header `X-CRM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed
with the campaign's own secret (issued when the campaign is created, rotatable), so that a
receiver holding one campaign's secret cannot forge another's posts; receivers should refuse a
stale `t`. Header `Idempotency-Key` names the delivery: a post whose answer was lost (a
timeout, a crash) is posted again with the same key, and the receiver must act on a key once.
A 2xx is sent; a redirect is not followed, and fails the delivery (not retried); any other 4xx
but 408 and 429 is a refusal, not retried; the rest are retried after
WEBHOOK_RETRY_BASE_SECONDS, doubling, until WEBHOOK_MAX_ATTEMPTS, when the delivery becomes a
dead letter.

Before each run of posts the URL is checked again (`webhook_url.webhook_url_check`: its host
is resolved and every address checked) and the posts connect to the address checked, with the
host name in the Host header and the TLS server name. A URL refused now makes every due
delivery a dead letter at once (reason `webhook_url_not_allowed`); a host that does not
resolve is a failed attempt, retried like an unanswered post."""

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campaigns.channels.webhook_url import (
    WebhookHostUnresolved,
    WebhookTarget,
    WebhookUrlRefused,
    webhook_url_check,
)
from campaigns.models import (
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.channel_calls import consent_hold
from crm.personal_data import decrypt

logger = logging.getLogger(__name__)

# A webhook delivery is in flight while reserved: its call has not settled it yet.
IN_FLIGHT = (DeliveryStatus.RESERVED,)
# Posts per ChannelSend: what one worker sends in a row before the next call's turn.
POSTS_PER_SEND = 100
RETRIED_STATUSES = frozenset({408, 429})


def signature(body: bytes, at: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
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
        due = [row for row in deliveries if row["retry_at"] is None or row["retry_at"] <= now]
        settled = 0
        target: WebhookTarget | None = None
        if due:
            try:
                # The reason is written in the business language: an operator reads it in
                # the ledger.
                with translation.override(settings.LANGUAGE_CODE):
                    target = webhook_url_check(campaign.webhook_url)
            except WebhookUrlRefused as refusal:
                logger.warning(
                    "webhook.url_refused",
                    extra={"campaign_id": campaign.pk, "channel_send_id": send.pk},
                )
                is_final = not isinstance(refusal, WebhookHostUnresolved)
                settled = _refuse(due, str(refusal), is_final=is_final)
                due = []
        if target is not None and due:
            settled += _post_all(send, target, due)
        if settled == len(deliveries):
            send.state = ChannelSendState.FINISHED
            send.answered_at = timezone.now()
            send.save(update_fields=["state", "answered_at"])


def _post_all(send: ChannelSend, target: WebhookTarget, due: list[dict[str, Any]]) -> int:
    """Post each due delivery in turn; answers how many are settled."""
    campaign = send.campaign
    secret = decrypt(campaign.webhook_secret_encrypted)
    variant_names = dict(campaign.variants.values_list("pk", "name"))
    settled = 0
    # No redirects (a 3xx is an answer, see _post), no proxy or credentials from the
    # environment: the request goes to the checked address and nowhere else.
    with httpx.Client(
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
    ) as client:
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
            # Consent read last, held across the post: see channel_calls.consent_hold.
            with consent_hold(send=send, deliveries=[row]) as allowed:
                if allowed:
                    settled += _post(client, target, secret, body, row["id"], attempts)
                else:
                    settled += 1  # suppressed: opted out
    return settled


def _refuse(due: list[dict[str, Any]], refusal: str, *, is_final: bool) -> int:
    """Record a URL refused before any post, in one statement per group of deliveries: every
    due delivery a dead letter when the policy forbids the URL; a failed attempt (retried,
    until the last) when its host did not resolve. Answers how many are settled."""
    error = refusal[:255]
    if is_final:
        Delivery.objects.filter(pk__in=[row["id"] for row in due], status__in=IN_FLIGHT).update(
            attempts=F("attempts") + 1,
            status=DeliveryStatus.DEAD_LETTER,
            reason=DeliveryReason.WEBHOOK_URL_NOT_ALLOWED,
            error=error,
            retry_at=None,
        )
        return len(due)
    now = timezone.now()
    by_attempts: dict[int, list[int]] = {}
    for row in due:
        by_attempts.setdefault(row["attempts"] + 1, []).append(row["id"])
    settled = 0
    for attempts, ids in by_attempts.items():
        rows = Delivery.objects.filter(pk__in=ids, status__in=IN_FLIGHT)
        if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            rows.update(
                attempts=attempts,
                status=DeliveryStatus.DEAD_LETTER,
                reason=DeliveryReason.CHANNEL_ERROR,
                error=error,
                retry_at=None,
            )
            settled += len(ids)
        else:
            rows.update(attempts=attempts, retry_at=now + retry_delay(attempts), error=error)
    return settled


def _post(
    client: httpx.Client,
    target: WebhookTarget,
    secret: str,
    body: bytes,
    delivery_id: int,
    attempts: int,
) -> bool:
    """Post one delivery to the checked address and record the outcome; answers whether it
    is settled (not to be retried)."""
    at = int(timezone.now().timestamp())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "X-CRM-Signature": signature(body, at, secret),
        "Idempotency-Key": f"delivery-{delivery_id}",
    }
    status: int | None = None
    problem = ""
    try:
        # Streamed: the status is all that is read, never the body, so a receiver cannot
        # keep the post (and the consent hold around it) open by sending a slow one.
        with client.stream(
            "POST",
            target.pinned_url,
            content=body,
            headers=headers,
            # The certificate is checked against the host name, not the address.
            extensions={"sni_hostname": target.host} if target.scheme == "https" else None,
        ) as response:
            status = response.status_code
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
    if status is not None and 300 <= status < 400:
        # Following it would post somewhere the policy has not checked.
        with translation.override(settings.LANGUAGE_CODE):
            failure = _("HTTP %(status)s: the receiver redirected; redirects are not followed.") % {
                "status": status
            }
        _settle(delivery_id, DeliveryStatus.FAILED, DeliveryReason.CHANNEL_ERROR, None, failure)
        return True
    if status is not None and 400 <= status < 500 and status not in RETRIED_STATUSES:
        _settle(
            delivery_id, DeliveryStatus.FAILED, DeliveryReason.CHANNEL_ERROR, None, f"HTTP {status}"
        )
        return True
    failure = f"HTTP {status}" if status is not None else problem
    return _failed_attempt(delivery_id, attempts, failure, now)


def _failed_attempt(delivery_id: int, attempts: int, failure: str, now: datetime) -> bool:
    """A retried failure: a dead letter after the last attempt (settled), else a retry later."""
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
