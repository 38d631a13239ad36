"""The rule field `contact_way`: the channel QR code (渠道活码) of a customer's first touch, by
id, compiled to a membership test on crm_customeracquisition, picked by name in the builder."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from crm.models import ContactWay, Customer, CustomerAcquisition
from segments.rules import rule_compile
from segments.rules.catalogue import rule_catalogue
from segments.rules.errors import InvalidRule
from tests.factories import CustomerFactory
from tests.segments.rules_support import sql_members

pytestmark = pytest.mark.django_db


def _way(state: str, name: str) -> ContactWay:
    return ContactWay.objects.create(name=name, state=state)


def _acquired(way: ContactWay | None) -> Customer:
    customer = CustomerFactory()
    CustomerAcquisition.objects.create(
        customer=customer,
        contact_way=way,
        state=way.state if way else "other",
        acquired_at=timezone.now() - timedelta(days=3),
    )
    return customer


def members(rule: dict[str, Any]) -> set[int]:
    return sql_members(rule, as_of=timezone.now())


def leaf(op: str, value: Any) -> dict[str, Any]:
    return {"field": "contact_way", "op": op, "value": value}


def test_customers_are_found_by_the_code_of_their_first_touch() -> None:
    video, live = _way("dy0312", "抖音视频"), _way("ks01", "快手直播间")
    from_video, from_live = _acquired(video), _acquired(live)
    unknown_code = _acquired(None)  # a state no code of ours had
    never = CustomerFactory()  # came some other way

    assert members(leaf("eq", video.pk)) == {from_video.pk}
    assert members(leaf("in", [video.pk, live.pk])) == {from_video.pk, from_live.pk}
    assert members(leaf("neq", video.pk)) == {from_live.pk}
    assert members(leaf("not_in", [video.pk])) == {from_live.pk}
    assert members(leaf("is_null", True)) == {unknown_code.pk, never.pk}
    assert members(leaf("is_null", False)) == {from_video.pk, from_live.pk}
    both = {"all": [leaf("eq", live.pk), {"field": "gender", "op": "eq", "value": "unknown"}]}
    assert members(both) == ({from_live.pk} if from_live.gender == "unknown" else set())


@pytest.mark.parametrize(
    ("op", "value"), [("gt", 1), ("contains", "dy"), ("eq", "dy0312"), ("eq", 0), ("eq", 1.5)]
)
def test_only_ids_and_equality_are_accepted(op: str, value: Any) -> None:
    with pytest.raises(InvalidRule):
        rule_compile(leaf(op, value), as_of=timezone.now())


def test_the_builder_lists_the_field_and_picks_codes_by_name(admin_client_en: Client) -> None:
    with translation.override("en"):
        fields = {
            field["name"]: field
            for category in rule_catalogue()["categories"]
            for field in category["fields"]
        }
    field = fields["contact_way"]
    assert (field["label"], field["picks"]) == ("channel QR code of first add", "contact_way")
    video = _way("dy0312", "抖音 0312 视频")
    _way("ks01", "快手直播间")
    url = reverse("admin:segments_segment_builder_options", kwargs={"kind": "contact_way"})
    found = admin_client_en.get(url, {"q": "抖音"}).json()
    assert found == {"results": [{"id": video.pk, "label": "抖音 0312 视频"}]}
    labelled = admin_client_en.get(url, {"ids": f"{video.pk}"}).json()
    assert labelled == {"results": [{"id": video.pk, "label": "抖音 0312 视频"}]}
