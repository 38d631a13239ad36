"""Free text of the segment API: a rule's strings must be storable (no NUL byte, no lone
surrogate) and are refused on the field, before any rule is compiled or stored."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import translation
from rest_framework.test import APIClient

from segments.models import Segment
from tests.crm.input_support import (
    LONE_SURROGATE,
    NUL,
    assert_lists_still_answer,
    invalid,
    send_json,
)

pytestmark = pytest.mark.django_db

TEXT = "Must not contain a NUL character or a lone surrogate."


def city_rule(city: str) -> dict[str, Any]:
    return {
        "all": [
            {"field": "spend", "op": "gte", "value": 0},
            {"field": "city", "op": "eq", "value": city},
        ]
    }


@pytest.mark.parametrize("city", [NUL, LONE_SURROGATE])
def test_a_rule_string_that_cannot_be_stored_is_refused_on_the_field(
    api_client_with_scopes: Callable[..., APIClient], city: str
) -> None:
    client = api_client_with_scopes("segments")
    expected = invalid({"rule": [f"all.1.value: {TEXT}"]})
    created = send_json(
        client, "post", "/api/v1/segments", {"name": "上海", "rule": city_rule(city)}
    )
    assert (created.status_code, created.json()) == (400, expected)
    preview = send_json(client, "post", "/api/v1/segments/preview", {"rule": city_rule(city)})
    assert (preview.status_code, preview.json()) == (400, expected)
    assert not Segment.objects.exists()
    segment = send_json(
        client, "post", "/api/v1/segments", {"name": "上海", "rule": city_rule("上海")}
    )
    assert segment.status_code == 201
    patched = send_json(
        client, "patch", f"/api/v1/segments/{segment.json()['id']}", {"rule": city_rule(city)}
    )
    assert (patched.status_code, patched.json()) == (400, expected)
    assert Segment.objects.get().rule == city_rule("上海")
    assert client.get("/api/v1/segments").status_code == 200
    assert_lists_still_answer()


def test_the_segment_admin_form_refuses_an_unstorable_rule_string(admin_user) -> None:
    request = RequestFactory().get("/")
    request.user = admin_user
    form_class = admin.site._registry[Segment].get_form(request)
    data = {"name": "上海", "kind": "dynamic", "description": ""}
    for city in (NUL, LONE_SURROGATE):
        form = form_class(data={**data, "rule": json.dumps(city_rule(city))})
        with translation.override("en"):
            assert form.errors == {"rule": [f"all.1.value: {TEXT}"]}
    assert form_class(data={**data, "rule": json.dumps(city_rule("上海"))}).is_valid()
    assert not Segment.objects.exists()


def test_rfm_breakpoints_beyond_their_column_are_refused_on_the_field(
    api_client_with_scopes: Callable[..., APIClient],
) -> None:
    client = api_client_with_scopes("segments")
    before = client.get("/api/v1/policies/rfm").json()
    response = client.put(
        "/api/v1/policies/rfm",
        {
            "scoring_method": "thresholds",
            "recency_breakpoints": [30, 60, 90, 2**31],
            "frequency_breakpoints": [1, 2, 3, 5],
            "monetary_breakpoints": ["200", "500", "1000", "3000"],
        },
        format="json",
    )
    assert (response.status_code, response.json()) == (
        400,
        invalid(
            {"recency_breakpoints.3": ["Ensure this value is less than or equal to 2147483647."]}
        ),
    )
    assert client.get("/api/v1/policies/rfm").json() == before
