"""Free text of the segment API: a rule's strings must be storable (no NUL byte, no lone
surrogate) and are refused on the field, before any rule is compiled or stored."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from segments.models import Segment
from tests.crm.support import LONE_SURROGATE, NUL, assert_lists_still_answer, send_json

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
    expected = {"rule": [f"all.1.value: {TEXT}"]}
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
