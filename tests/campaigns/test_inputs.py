"""Free text, planned times and amounts of the campaign API: message texts have a bound, an
extra rule's strings must be storable, send times lie in a sane range, amounts are not
negative; each refused on its field, nothing created."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import translation
from rest_framework.test import APIClient

from campaigns.models import Campaign, Variant
from core.validators import FREE_TEXT_MAX_LENGTH
from segments.models import Segment
from tests.campaigns.support import campaign_body
from tests.crm.input_support import LONE_SURROGATE, NUL, invalid, send_json

pytestmark = pytest.mark.django_db

PLANNED_TIME = "Must lie between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z."
TEXT = "Must not contain a NUL character or a lone surrogate."
TOO_LONG = f"Ensure this field has no more than {FREE_TEXT_MAX_LENGTH} characters."


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"content": "x" * (FREE_TEXT_MAX_LENGTH + 1)}, {"content": [TOO_LONG]}),
        (
            {
                "content": None,
                "variants": [{"name": "A", "content": "x" * (FREE_TEXT_MAX_LENGTH + 1)}],
            },
            {"variants.0.content": [TOO_LONG]},
        ),
        (
            {"extra_rule": {"field": "city", "op": "eq", "value": NUL}},
            {"extra_rule": [f"value: {TEXT}"]},
        ),
        (
            {"extra_rule": {"field": "city", "op": "eq", "value": LONE_SURROGATE}},
            {"extra_rule": [f"value: {TEXT}"]},
        ),
        (
            {"schedule_kind": "at", "scheduled_at": "9999-12-30T00:00:00Z"},
            {"scheduled_at": [PLANNED_TIME]},
        ),
        (
            {"schedule_kind": "at", "scheduled_at": "0001-01-02T00:00:00+14:00"},
            {"scheduled_at": [PLANNED_TIME]},
        ),
        (
            {"conversion_min_amount": "-1.00"},
            {"conversion_min_amount": ["Ensure this value is greater than or equal to 0."]},
        ),
    ],
)
def test_a_campaign_field_out_of_range_is_refused(
    api_client_with_scopes: Callable[..., APIClient],
    segment: Segment,
    overrides: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    client = api_client_with_scopes("campaigns")
    body = {k: v for k, v in campaign_body(segment, **overrides).items() if v is not None}
    response = send_json(client, "post", "/api/v1/campaigns", body)
    assert (response.status_code, response.json()) == (400, invalid(errors))
    assert not Campaign.objects.exists()
    assert client.get("/api/v1/campaigns").status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scheduled_at_0", "9999-12-30", PLANNED_TIME),
        ("trigger_ends_at_0", "0001-01-02", PLANNED_TIME),
        ("extra_rule", json.dumps({"field": "city", "op": "eq", "value": NUL}), f"value: {TEXT}"),
        ("conversion_min_amount", "-1", "Ensure this value is greater than or equal to 0."),
    ],
)
def test_the_campaign_admin_form_refuses_the_same_values(admin_user, field, value, message) -> None:
    request = RequestFactory().get("/")
    request.user = admin_user
    form_class = admin.site._registry[Campaign].get_form(request)
    data = {field: value}
    if field.endswith("_0"):
        data[field.replace("_0", "_1")] = "10:00:00"
    form = form_class(data=data)
    with translation.override("en"):
        assert form.errors[field.removesuffix("_0")] == [message]
    assert not Campaign.objects.exists()


def test_the_variant_inline_bounds_the_message_text(admin_user) -> None:
    request = RequestFactory().get("/")
    request.user = admin_user
    campaign_admin = admin.site._registry[Campaign]
    inline = next(i for i in campaign_admin.get_inline_instances(request) if i.model is Variant)
    form_class = inline.get_formset(request).form
    form = form_class(data={"name": "A", "weight": 1, "content": "x" * (FREE_TEXT_MAX_LENGTH + 1)})
    with translation.override("en"):
        assert form.errors["content"] == [
            f"Ensure this value has at most {FREE_TEXT_MAX_LENGTH} characters (it has "
            f"{FREE_TEXT_MAX_LENGTH + 1})."
        ]
