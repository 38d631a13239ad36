"""Each webhook campaign signs its posts with its own secret: issued when the campaign is
created, shown once (API answer, admin message), rotatable (API, admin action), stored
encrypted and never shown again on a read; existing campaigns got one each in a migration."""

import hashlib
import hmac
import importlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from campaigns.models import Campaign, Channel
from campaigns.services.campaigns import (
    campaign_launch,
    campaign_plan,
    campaign_update,
    campaign_webhook_secret_rotate,
)
from campaigns.services.dispatch import channel_sends_run
from core.errors import Conflict
from crm.personal_data import decrypt
from segments.models import Segment
from tests.campaigns.support import (
    WebhookReceiver,
    audience,
    calls_of,
    campaign_add_posted,
    make_campaign,
    webhook_campaign,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SECRET_MIGRATION = importlib.import_module("campaigns.migrations.0010_campaign_webhook_secret")


def verifies(header: str, body: bytes, secret: str) -> bool:
    """What a receiver does: recompute the HMAC of "<t>.<body>" and compare."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(parts["v1"], expected)


def signed(receiver: WebhookReceiver) -> list[tuple[str, bytes]]:
    """The signature header and the body of each post the receiver got."""
    return [(post.headers["X-CRM-Signature"], post.body) for post in receiver.received]


def post_once(campaign: Campaign) -> None:
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    channel_sends_run(channel_send_ids=calls_of(campaign))


def test_each_campaign_s_posts_verify_only_with_its_own_secret(
    webhook_receiver: WebhookReceiver,
) -> None:
    url = webhook_receiver.url
    first = webhook_campaign(audience([CustomerFactory()], "first-audience"), url, name="first")
    second = webhook_campaign(audience([CustomerFactory()], "second-audience"), url, name="second")
    assert first.issued_webhook_secret.startswith("whsec_")
    assert second.issued_webhook_secret.startswith("whsec_")
    assert first.issued_webhook_secret != second.issued_webhook_secret

    post_once(first)
    post_once(second)

    (first_post, second_post) = signed(webhook_receiver)
    assert verifies(*first_post, first.issued_webhook_secret)
    assert not verifies(*first_post, second.issued_webhook_secret)
    assert verifies(*second_post, second.issued_webhook_secret)
    assert not verifies(*second_post, first.issued_webhook_secret)


def test_a_rotated_secret_signs_the_next_posts_and_the_old_one_no_longer_verifies(
    webhook_receiver: WebhookReceiver,
) -> None:
    campaign = webhook_campaign(audience([CustomerFactory()]), webhook_receiver.url)
    old = campaign.issued_webhook_secret

    rotated = campaign_webhook_secret_rotate(campaign_id=campaign.pk, actor="test")
    post_once(campaign)

    new = rotated.issued_webhook_secret
    assert new.startswith("whsec_") and new != old
    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == new
    ((header, body),) = signed(webhook_receiver)
    assert verifies(header, body, new)
    assert not verifies(header, body, old)


def test_the_secret_is_stored_encrypted() -> None:
    campaign = webhook_campaign(audience([CustomerFactory()]))

    stored = Campaign.objects.get().webhook_secret_encrypted
    assert campaign.issued_webhook_secret not in stored
    assert decrypt(stored) == campaign.issued_webhook_secret
    assert Campaign.objects.get().issued_webhook_secret == ""  # never loaded


def test_a_draft_made_a_webhook_campaign_is_issued_its_secret() -> None:
    campaign = make_campaign(audience([CustomerFactory()]), name="wecom")
    assert (campaign.issued_webhook_secret, campaign.webhook_secret_encrypted) == ("", "")

    changed = campaign_update(
        campaign_id=campaign.pk,
        actor="test",
        changes={
            "channel": Channel.WEBHOOK,
            "webhook_url": "https://hooks.example.com/crm",
            "consent_channel": "sms",
        },
    )

    assert changed.issued_webhook_secret.startswith("whsec_")
    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == (
        changed.issued_webhook_secret
    )


def test_only_a_webhook_campaign_has_a_secret_to_rotate() -> None:
    campaign = make_campaign(audience([CustomerFactory()]), name="wecom")

    with pytest.raises(Conflict) as refused:
        campaign_webhook_secret_rotate(campaign_id=campaign.pk, actor="test")

    assert refused.value.code == "campaign_not_webhook"
    assert Campaign.objects.get().webhook_secret_encrypted == ""


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def client(api_client_with_scopes: Callable[..., APIClient]) -> APIClient:
    return api_client_with_scopes("campaigns:read", "campaigns:write")


def test_the_api_shows_the_secret_once_and_never_on_a_read(
    client: APIClient, webhook_audience: Segment
) -> None:
    created = client.post(
        "/api/v1/campaigns",
        {
            "name": "回调",
            "channel": "webhook",
            "consent_channel": "sms",
            "webhook_url": "https://hooks.example.com/crm",
            "content": "新品上市",
            "include_segment_ids": [webhook_audience.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created["Cache-Control"] == "no-store"
    secret = created.json()["webhook_secret"]
    campaign = Campaign.objects.get()
    assert decrypt(campaign.webhook_secret_encrypted) == secret

    detail = client.get(f"/api/v1/campaigns/{campaign.pk}")
    listing = client.get("/api/v1/campaigns")
    changed = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"name": "回调2"}, format="json")

    for response in (detail, listing, changed):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert "webhook_secret" not in response.content.decode()
    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == secret


def test_the_api_rotates_the_secret(client: APIClient, webhook_audience: Segment) -> None:
    campaign = webhook_campaign(webhook_audience)
    old = campaign.issued_webhook_secret

    response = client.post(f"/api/v1/campaigns/{campaign.pk}/rotate-webhook-secret")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["id"] == campaign.pk
    assert body["webhook_secret"].startswith("whsec_") and body["webhook_secret"] != old
    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == body["webhook_secret"]
    read = client.get(f"/api/v1/campaigns/{campaign.pk}").content.decode()
    assert body["webhook_secret"] not in read


def test_rotating_needs_the_write_scope_and_a_webhook_campaign(
    api_client_with_scopes: Callable[..., APIClient], client: APIClient, webhook_audience: Segment
) -> None:
    hook = webhook_campaign(webhook_audience)
    wecom = make_campaign(webhook_audience, name="wecom")
    reader = api_client_with_scopes("campaigns:read")

    denied = reader.post(f"/api/v1/campaigns/{hook.pk}/rotate-webhook-secret")
    refused = client.post(f"/api/v1/campaigns/{wecom.pk}/rotate-webhook-secret")
    missing = client.post("/api/v1/campaigns/999999/rotate-webhook-secret")

    assert denied.status_code == 403
    assert decrypt(Campaign.objects.get(pk=hook.pk).webhook_secret_encrypted) == (
        hook.issued_webhook_secret
    )
    assert refused.status_code == 409
    assert refused.json() == {
        "code": "campaign_not_webhook",
        "detail": "Only a webhook campaign has a signing secret.",
        "errors": {"channel": ["wecom_customer"]},
    }
    assert Campaign.objects.get(pk=wecom.pk).webhook_secret_encrypted == ""
    assert missing.status_code == 404


# --- Admin ------------------------------------------------------------------------------------


def shown(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_admin_shows_the_secret_once_after_create(
    admin_client_en: Client, webhook_audience: Segment
) -> None:
    response = campaign_add_posted(
        admin_client_en,
        name="回调",
        channel="webhook",
        consent_channel="sms",
        webhook_url="https://hooks.example.com/crm",
        include_segments=[webhook_audience.pk],
        **{"variants-0-name": "A", "variants-0-content": "新品上市"},
    )

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    secret = decrypt(campaign.webhook_secret_encrypted)
    assert shown(response)[0] == (
        f"Signing secret of the webhook campaign \u201c回调\u201d: {secret} \u2014 it is shown "
        "only this once: give it to the receiver now (it verifies the X-CRM-Signature header)."
    )
    change_page = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert admin_client_en.get(change_page).content.decode().count(secret) == 1  # the message
    assert secret not in admin_client_en.get(change_page).content.decode()


def test_the_admin_action_rotates_the_secret_after_a_confirmation(
    admin_client_en: Client, webhook_audience: Segment
) -> None:
    campaign = webhook_campaign(webhook_audience, name="回调")
    old = campaign.issued_webhook_secret
    changelist = reverse("admin:campaigns_campaign_changelist")

    asked = admin_client_en.post(
        changelist, {"action": "rotate_webhook_secret", "_selected_action": [campaign.pk]}
    )
    assert asked.status_code == 200
    assert 'name="confirm" value="yes"' in asked.content.decode()
    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == old

    done = admin_client_en.post(
        changelist,
        {"action": "rotate_webhook_secret", "_selected_action": [campaign.pk], "confirm": "yes"},
    )

    assert done.status_code == 302
    new = decrypt(Campaign.objects.get().webhook_secret_encrypted)
    assert new != old
    assert shown(done) == [
        f"Signing secret of the webhook campaign \u201c回调\u201d: {new} \u2014 it is shown "
        "only this once: give it to the receiver now (it verifies the X-CRM-Signature header).",
        "1 signing secret rotated.",
    ]


# --- Migration --------------------------------------------------------------------------------


def test_the_migration_gives_each_existing_webhook_campaign_its_own_secret(
    webhook_audience: Segment,
) -> None:
    for name in ("a", "b"):
        webhook_campaign(webhook_audience, name=name)
    make_campaign(webhook_audience, name="wecom")
    with connection.cursor() as cursor:
        # As before the migration (undone with the test's transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE campaigns_campaign DROP CONSTRAINT campaign_webhook_has_secret")
    Campaign.objects.update(webhook_secret_encrypted="")

    SECRET_MIGRATION.issue_secrets(apps, None)

    secrets = {
        c.name: c.webhook_secret_encrypted and decrypt(c.webhook_secret_encrypted)
        for c in Campaign.objects.all()
    }
    assert secrets["wecom"] == ""
    assert secrets["a"].startswith("whsec_") and secrets["b"].startswith("whsec_")
    assert secrets["a"] != secrets["b"]


def test_a_webhook_campaign_cannot_be_left_without_a_secret(webhook_audience: Segment) -> None:
    campaign = webhook_campaign(webhook_audience)

    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(webhook_secret_encrypted="")

    assert decrypt(Campaign.objects.get().webhook_secret_encrypted) == (
        campaign.issued_webhook_secret
    )
