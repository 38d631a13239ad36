"""The segment portrait (人群画像) in the admin: the page of a segment (a chart and a table per
dimension, in the operators' words, over-indexed values marked, small cells hidden), linked
from the segment's list row and page; the JSON of a rule's portrait for the builder; who may
see them; every wrong body answered 400 with a code; queries that do not grow with the data."""

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from console.admin import SegmentPageAdmin
from console.portrait import portrait_context
from segments import portrait
from segments.admin import SegmentAdmin
from segments.models import Segment
from segments.portrait import segment_portrait
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


@pytest.fixture
def segment() -> Segment:
    """Six women of Hangzhou who bought skincare, in a brand of six more men of Guangzhou."""
    made = SegmentFactory(kind="static", name="杭州护肤女性")
    for _ in range(6):
        woman = CustomerFactory(gender="female", province="浙江", city="杭州")
        CustomerMetricsFactory(
            customer=woman,
            lifecycle_state="active",
            lifetime_orders=1,
            lifetime_net_spend=Decimal("300"),
        )
        OrderFactory(customer=woman, items=[("SK-1", "护肤")])
        SegmentMembershipFactory(segment=made, customer=woman)
    for _ in range(6):
        CustomerFactory(gender="male", province="广东", city="广州")
    return made


def portrait_url(segment: Segment) -> str:
    return reverse("admin:segments_segment_portrait", args=[segment.pk])


RULE_URL = "/admin/segments/segment/portrait/"


def post_rule(client: Client, body: Any) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(RULE_URL, data, content_type="application/json")


def test_the_segment_pages_are_console_s_with_the_portrait_link() -> None:
    assert type(admin.site.get_model_admin(Segment)) is SegmentPageAdmin
    assert issubclass(SegmentPageAdmin, SegmentAdmin)
    names = SegmentPageAdmin.list_display
    assert names[names.index("members_link") + 1] == "portrait_link"
    assert "portrait_link" in SegmentPageAdmin.readonly_fields


def test_the_list_and_the_segment_page_link_to_the_portrait(
    admin_client_en: Client, segment: Segment
) -> None:
    listed = admin_client_en.get(reverse("admin:segments_segment_changelist"))
    assert f'href="{portrait_url(segment)}"' in listed.content.decode()
    page = admin_client_en.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    assert f'href="{portrait_url(segment)}"' in page.content.decode()


def test_the_portrait_page_shows_every_dimension_in_chinese(
    admin_user: Any, segment: Segment, django_assert_max_num_queries: Any
) -> None:
    client = client_of(admin_user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    with django_assert_max_num_queries(20):
        page = client.get(portrait_url(segment))
    assert page.status_code == 200
    text = page.content.decode()
    for heading in ("性别", "省份", "城市", "来源渠道", "生命周期", "RFM", "累计消费", "预测价值"):
        assert heading in text, heading
    assert "购买品类" in text and "护肤" in text
    assert "杭州护肤女性的人群画像" in text
    assert "北京时间" in text
    data = page.context["portrait"]
    gender = next(d for d in data["dimensions"] if d["name"] == "gender")
    female = gender["rows"][0]
    # 6 of 6 against 6 of 12: TGI 200, highlighted.
    assert (female["label"], female["count"], female["share"], female["tgi"]) == (
        "女",
        "6",
        "100%",
        "200",
    )
    assert female["is_high"] is True
    assert 'class="portrait-high"' in text
    assert 'id="portrait-data"' in text  # the charts' data, as json_script


def test_cells_of_few_customers_show_no_figures(admin_client_en: Client, segment: Segment) -> None:
    result = portrait_context(segment_portrait(segment_id=segment.pk))
    assert result["min_cell_size"] == portrait.MIN_CELL_SIZE == 5
    SegmentMembershipFactory(segment=segment, customer=CustomerFactory(gender="male"))

    cache.clear()
    page = admin_client_en.get(portrait_url(segment))
    gender = next(d for d in page.context["portrait"]["dimensions"] if d["name"] == "gender")
    male = next(row for row in gender["rows"] if row["label"] == "Male")
    assert (male["count"], male["share"], male["tgi"]) == ("Fewer than 5", "–", "–")
    assert male["is_suppressed"] is True


def test_an_empty_segment_says_so(admin_client_en: Client) -> None:
    empty = SegmentFactory(kind="static")
    page = admin_client_en.get(portrait_url(empty))
    assert page.status_code == 200
    assert "This segment has no members yet" in page.content.decode()


def test_the_portrait_needs_the_view_permission(segment: Segment) -> None:
    nobody = client_of(UserFactory())
    assert nobody.get(portrait_url(segment)).status_code == 403
    assert (
        post_rule(nobody, {"rule": {"field": "gender", "op": "eq", "value": "male"}}).status_code
        == 403
    )

    viewer = client_of(
        UserFactory(
            permissions=seeing_every_customer(Permission.objects.filter(codename="view_segment"))
        )
    )
    assert viewer.get(portrait_url(segment)).status_code == 200
    answer = post_rule(viewer, {"rule": {"field": "gender", "op": "eq", "value": "male"}})
    assert answer.status_code == 200
    assert answer.json()["size"] == "6"


def test_no_such_segment_is_a_404(admin_client_en: Client) -> None:
    response = admin_client_en.get(reverse("admin:segments_segment_portrait", args=[404]))
    assert response.status_code == 404


def test_the_builder_gets_a_rule_s_portrait_as_json(
    admin_client_en: Client, segment: Segment
) -> None:
    answer = post_rule(admin_client_en, {"rule": {"field": "city", "op": "eq", "value": "广州"}})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["size"] == "6" and body["base_size"] == "12"
    city = next(d for d in body["dimensions"] if d["name"] == "city")
    assert city["chart"]["labels"][0] == "广州"
    assert city["chart"]["shares"][0] == 100.0
    assert city["chart"]["tgis"][0] == 200
    assert admin_client_en.get(RULE_URL).status_code == 405


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ([], "invalid_json"),
        ({"rules": {}}, "invalid_json"),
        ({"rule": None}, "invalid_rule"),
        ({"rule": {"field": "gender", "op": "eq", "value": "robot"}}, "invalid_rule"),
        ({"rule": {"field": "city", "op": "eq", "value": "a\u0000b"}}, "invalid_text"),
        (
            {"rule": {"any": [{"field": "member_level", "op": "eq", "value": 1}] * 500}},
            "invalid_rule",
        ),
    ],
)
def test_a_wrong_body_is_a_400_with_a_code(admin_client_en: Client, body: Any, code: str) -> None:
    answer = post_rule(admin_client_en, body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    if code != "invalid_json" or isinstance(body, dict):
        assert "rule" in answer.json()["errors"]
