"""The dry run judges exactly as launching does, and writes nothing; tracked links record
clicks and redirect."""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client, override_settings

from campaigns.models import CampaignState, Delivery, DeliveryStatus, FrequencyRule, LinkClick
from campaigns.services.campaigns import VariantInput, campaign_launch, campaign_plan
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.links import links_rewrite
from campaigns.services.reservation import deliveries_reserve_batch
from tests.campaigns.support import audience, make_campaign, opt_out, wecom_customers
from tests.factories import CampaignFactory, CustomerFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_dry_run_predicts_what_launching_does() -> None:
    reachable = wecom_customers(40)
    unreachable = CustomerFactory()
    opt_out(reachable[0], at=NOON - timedelta(days=1))
    members = [*reachable, unreachable]
    earlier = make_campaign(audience(reachable[:10], "earlier"), name="earlier")
    campaign_launch(campaign_id=earlier.pk, actor="t", at=NOON - timedelta(hours=2))
    campaign_plan(campaign_id=earlier.pk, at=NOON - timedelta(hours=2))
    deliveries_reserve_batch(campaign_id=earlier.pk, at=NOON - timedelta(hours=2))
    campaign = make_campaign(
        audience(members, "all"),
        name="now",
        holdout_share=Decimal("0.3"),
        variants=[VariantInput(name="A", content="a"), VariantInput(name="B", content="b")],
    )
    before = Delivery.objects.count()
    dry = campaign_dry_run(campaign=campaign, at=NOON)
    assert Delivery.objects.count() == before  # nothing written
    assert dry.audience == 41
    assert (dry.opted_out, dry.no_identity) == (1, 1)
    # The platform preset (1 a day on WeCom) holds back the nine others sent this morning.
    preset = FrequencyRule.objects.get(is_platform_preset=True).name
    assert dry.capped_by_rule == {preset: 9}
    assert dry.holdout + dry.would_send == 30
    assert sum(dry.per_variant.values()) == dry.would_send
    assert len(dry.sample) == 20

    campaign_launch(campaign_id=campaign.pk, actor="t", at=NOON)
    campaign_plan(campaign_id=campaign.pk, at=NOON)
    while deliveries_reserve_batch(campaign_id=campaign.pk, at=NOON).reserved_ids:
        pass
    done = {
        d.customer_id: d
        for d in Delivery.objects.filter(campaign=campaign).select_related("variant")
    }
    outcome_of = {
        DeliveryStatus.RESERVED: "send",
        DeliveryStatus.HELD_OUT: "holdout",
    }
    for entry in dry.sample:
        delivery = done[entry["customer_id"]]
        expected = outcome_of.get(delivery.status, delivery.reason)
        assert entry["outcome"] == expected, entry
        if expected == "send":
            assert entry["variant"] == delivery.variant.name
    assert sum(d.status == DeliveryStatus.HELD_OUT for d in done.values()) == dry.holdout
    assert sum(d.status == DeliveryStatus.RESERVED for d in done.values()) == dry.would_send


@override_settings(PUBLIC_BASE_URL="https://crm.example.com/")
def test_tracked_links_record_clicks_and_redirect(client: Client) -> None:
    campaign = make_campaign(
        name="links",
        variants=[
            VariantInput(
                name="A",
                content="看 https://shop.example.com/a?x=1 和 https://shop.example.com/b。",
            )
        ],
    )
    variant = campaign.variants.get()
    text = links_rewrite(
        variant.content, campaign_id=campaign.pk, variant_id=variant.pk, delivery_id=None
    )
    first, second = [part.split("/l/")[1].rstrip("。") for part in text.split() if "/l/" in part]
    assert text.startswith("看 https://crm.example.com/l/")
    response = client.get(f"/l/{second}")
    assert (response.status_code, response["Location"]) == (302, "https://shop.example.com/b")
    response = client.get(f"/l/{first}")
    assert response["Location"] == "https://shop.example.com/a?x=1"
    assert list(LinkClick.objects.order_by("id").values_list("link_no", "delivery_id")) == [
        (1, None),
        (0, None),
    ]
    assert client.get(f"/l/{first[:-2]}xx").status_code == 404
    assert LinkClick.objects.count() == 2


def test_the_reports_interval_over_the_api_is_null_when_nobody_converted(
    api_client_with_scopes: Callable[..., Any],
) -> None:
    campaign = CampaignFactory(variants=["A"], state=CampaignState.COMPLETED)
    DeliveryFactory(campaign=campaign, variant=campaign.variants.get())
    DeliveryFactory(campaign=campaign, is_holdout=True, status=DeliveryStatus.HELD_OUT)

    report = api_client_with_scopes("campaigns:read").get(f"/api/v1/campaigns/{campaign.pk}/report")

    assert report.status_code == 200
    for arm in (report.json()["total"], report.json()["variants"][0]):
        assert arm["lift"] == {
            "treated_rate": 0.0,
            "holdout_rate": 0.0,
            "absolute": 0.0,
            "relative": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "incremental_revenue": 0.0,
        }


def test_dry_run_and_report_over_the_api(api_client_with_scopes: Callable[..., Any]) -> None:
    customers = wecom_customers(3)
    campaign = make_campaign(audience(customers, "api"), name="api")
    reader = api_client_with_scopes("campaigns:read")
    dry = reader.get(f"/api/v1/campaigns/{campaign.pk}/dry-run")
    assert dry.status_code == 200
    body = dry.json()
    assert (body["audience"], body["would_send"] + body["holdout"], len(body["sample"])) == (
        3,
        3,
        3,
    )
    assert {entry["customer_id"] for entry in body["sample"]} == {c.pk for c in customers}
    report = reader.get(f"/api/v1/campaigns/{campaign.pk}/report")
    assert report.status_code == 200
    assert report.json()["total"]["audience"] == 0  # not launched: nothing planned yet
    assert report.json()["variants"][0]["variant"] == "A"
    missing = reader.get("/api/v1/campaigns/999999/report")
    assert (missing.status_code, missing.json()["code"]) == (404, "campaign_not_found")
    assert (
        api_client_with_scopes("segments:read")
        .get(f"/api/v1/campaigns/{campaign.pk}/dry-run")
        .status_code
        == 403
    )
