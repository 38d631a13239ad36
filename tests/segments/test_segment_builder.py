"""The segment builder's server side: the rule registry as the builder's data (one source of
truth, labelled in Chinese), the segment form carrying it and the problems of a refused rule,
the admin's preview (the API's service, for those who may edit segments, every hostile input a
4xx with a code) and the lists a rule picks its tags, groups and segments from."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import translation

from segments.models import LifecycleState, RfmTier, Segment
from segments.rules import fields as rule_fields
from segments.rules.catalogue import rule_catalogue
from segments.rules.fields import FieldCategory, RowColumn, registered_fields
from segments.rules.sql import Sql
from segments.rules.values import NumberType
from segments.selectors import RULE_REFERENCE_OPTIONS
from segments.services.segments import segment_preview
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    GroupFactory,
    SegmentFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db

PREVIEW_URL = "/admin/segments/segment/builder/preview/"


def options_url(kind: str) -> str:
    return reverse("admin:segments_segment_builder_options", kwargs={"kind": kind})


def post_preview(client: Client, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(PREVIEW_URL, raw, content_type="application/json")


def staff_client(*codenames: str) -> Client:
    permissions = Permission.objects.filter(
        content_type__app_label="segments", codename__in=codenames
    )
    return client_of(UserFactory(permissions=seeing_every_customer(permissions)))


def catalogue_fields(catalogue: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        field["name"]: {**field, "category": category["code"]}
        for category in catalogue["categories"]
        for field in category["fields"]
    }


# --- The registry as the builder's data -----------------------------------------------------


def test_the_catalogue_lists_every_registered_field_once_with_its_operators() -> None:
    with translation.override("zh-hans"):
        catalogue = rule_catalogue()
    fields = catalogue_fields(catalogue)
    registered = registered_fields()
    assert list(fields) == [
        field.name
        for category in FieldCategory
        for field in registered
        if field.category == category
    ]
    for field in registered:
        described = fields[field.name]
        assert described["category"] == field.category.value
        offered = {op["code"] for op in described["ops"]}
        assert offered == set(field.ops), field.name
        if "is_null" in field.ops:
            assert [op.get("value") for op in described["ops"] if op["code"] == "is_null"] == [
                True,
                False,
            ]
    assert [category["label"] for category in catalogue["categories"]] == [
        "基本资料",
        "标签",
        "社群",
        "营销授权",
        "消费与生命周期",
        "行为",
        "预测",
        "人群",
    ]


def test_the_catalogue_speaks_chinese_and_keeps_the_codes_underneath() -> None:
    with translation.override("zh-hans"):
        fields = catalogue_fields(rule_catalogue())
    assert fields["lifecycle_state"]["label"] == "生命周期状态"
    assert fields["lifecycle_state"]["kind"] == "choice"
    with translation.override("zh-hans"):
        states = [{"code": code, "label": str(label)} for code, label in LifecycleState.choices]
    assert fields["lifecycle_state"]["choices"] == states
    assert {"code": "sleeping", "label": "沉睡"} in states
    tiers = {choice["code"]: choice["label"] for choice in fields["rfm_tier"]["choices"]}
    assert list(tiers) == list(RfmTier.values)
    assert tiers["important_value"] == "重要价值客户"
    assert fields["consent.wecom"]["label"] == "营销授权 · 企业微信"
    assert fields["spend"]["ops"][:2] == [
        {"code": "eq", "label": "等于", "alias": False},
        {"code": "neq", "label": "不等于", "alias": False},
    ]
    # A date's gt says what after says: offered only where a rule already uses it.
    date_ops = {op["code"]: op for op in fields["last_order_at"]["ops"]}
    assert date_ops["after"] == {"code": "after", "label": "晚于", "alias": False}
    assert date_ops["gt"]["alias"] is True
    assert fields["tag"]["kind"] == "tag"
    assert fields["segment"]["kind"] == "segment"
    assert fields["churn_risk"] | {"ops": None, "params": None, "picks": None} == {
        "name": "churn_risk",
        "label": "流失风险",
        "kind": "number",
        "category": "predictions",
        "integer": False,
        "minimum": 0,
        "maximum": 1,
        "ops": None,
        "params": None,
        "picks": None,
    }
    purchased = fields["purchased"]
    assert [(p["key"], p["alternative_of"], p["required"]) for p in purchased["params"]] == [
        ("category", "item", False),
        ("sku", "item", False),
        ("within_days", "", False),
    ]
    kinds = fields["interacted"]["params"][0]
    assert kinds["required"] is True
    assert {"code": "link_click", "label": "链接点击"} in kinds["choices"]


def test_a_newly_registered_field_appears_in_the_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rule_fields, "_REGISTRY", dict(rule_fields._REGISTRY))
    rule_fields.register_field(
        name="member_points",
        label="会员积分",
        category=FieldCategory.PROFILE,
        value_type=NumberType(is_integer=True),
        column=RowColumn(Sql("c.member_points")),
    )
    profile = rule_catalogue()["categories"][0]
    assert profile["fields"][-1]["name"] == "member_points"
    assert profile["fields"][-1]["label"] == "会员积分"


def test_params_offered_need_a_params_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_fields, "_REGISTRY", dict(rule_fields._REGISTRY))
    with pytest.raises(ValueError, match="params offered without a params parser"):
        rule_fields.register_field(
            name="points",
            label="积分",
            category=FieldCategory.PROFILE,
            value_type=NumberType(),
            column=RowColumn(Sql("c.member_points")),
            params=[rule_fields.ParamSpec(key="days", label="天", kind=rule_fields.ParamKind.DAYS)],
        )
    assert rule_fields.field_named("points") is None


# --- The form's page ------------------------------------------------------------------------


def builder_data(page: Any) -> dict[str, Any]:
    return page.context["builder"]


def test_the_segment_form_carries_the_builder_data(admin_client_en: Client) -> None:
    page = admin_client_en.get(reverse("admin:segments_segment_add"))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="segment-builder-data"' in content
    assert "segments/builder.js" in content
    assert 'id="segment-builder-portrait"' in content
    data = builder_data(page)
    assert data["urls"] == {
        "preview": PREVIEW_URL,
        "options": "/admin/segments/segment/builder/options/KIND/",
    }
    assert data["segment_id"] is None
    assert data["problems"] == []
    assert catalogue_fields(data["catalogue"]).keys() == {f.name for f in registered_fields()}

    segment = SegmentFactory(rule={"field": "gender", "op": "eq", "value": "female"})
    page = admin_client_en.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    assert builder_data(page)["segment_id"] == segment.pk


def test_a_refused_rule_comes_back_with_its_problems_placed(admin_client_en: Client) -> None:
    page = admin_client_en.post(
        reverse("admin:segments_segment_add"),
        {
            "name": "高消费",
            "kind": "dynamic",
            "rule": json.dumps(
                {"all": [{"field": "spend", "op": "gte", "value": "many"}, {"field": "nope"}]}
            ),
            "size_history-TOTAL_FORMS": "0",
            "size_history-INITIAL_FORMS": "0",
        },
    )
    assert page.status_code == 200
    assert [p["path"] for p in builder_data(page)["problems"]] == [
        "$.all[0].value",
        "$.all[1].op",
    ]
    assert not Segment.objects.exists()


# --- The admin's preview --------------------------------------------------------------------


def sleeping_vips() -> dict[str, Any]:
    vip = TagFactory(group=TagGroupFactory(name="会员等级"), name="VIP")
    people = []
    for name, state, is_vip in [
        ("林小姐", LifecycleState.SLEEPING, True),
        ("王先生", LifecycleState.SLEEPING, False),
        ("孙小姐", LifecycleState.ACTIVE, True),
    ]:
        customer = CustomerFactory(display_name=name)
        CustomerMetricsFactory(customer=customer, lifecycle_state=state, rfm_tier="general_value")
        if is_vip:
            CustomerTagFactory(customer=customer, tag=vip)
        people.append(customer)
    rule = {
        "all": [
            {"field": "lifecycle_state", "op": "eq", "value": "sleeping"},
            {"field": "tag", "op": "has", "value": vip.pk},
        ]
    }
    return {"vip": vip, "people": people, "rule": rule}


def test_the_preview_answers_the_services_size_counts_and_labelled_sample(
    django_assert_max_num_queries: Any,
) -> None:
    brand = sleeping_vips()
    client = staff_client("change_segment")
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    # The session and permissions, the rule checked twice (as the API does), the statement
    # with its settings, the sample's rows: none per sample customer.
    with django_assert_max_num_queries(14):
        response = post_preview(client, {"rule": brand["rule"], "segment": None})
    assert response.status_code == 200
    body = response.json()
    service = segment_preview(rule=brand["rule"])
    assert body["size"] == service.size == 1
    assert body["condition_counts"] == service.condition_counts == [2, 2]
    lin = brand["people"][0]
    assert body["sample"] == [
        {
            "id": lin.pk,
            "display_name": "林小姐",
            "lifecycle_state": "沉睡",
            "rfm_tier": "一般价值客户",
            "url": reverse("admin:crm_customer_change", args=[lin.pk]),
        }
    ]


def test_a_wrong_rule_is_refused_with_the_paths_of_its_problems(
    admin_client_en: Client,
) -> None:
    response = post_preview(
        admin_client_en,
        {"rule": {"all": [{"field": "spend", "op": "gte", "value": None}, {"any": []}]}},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_rule"
    assert [problem["path"] for problem in body["errors"]["rule"]] == [
        "$.all[0].value",
        "$.all[1].any",
    ]


def test_a_rule_reaching_its_own_segment_is_refused_as_saving_would(
    admin_client_en: Client,
) -> None:
    segment = SegmentFactory(rule={"field": "gender", "op": "eq", "value": "female"})
    rule = {"field": "segment", "op": "in", "value": [segment.pk]}
    assert post_preview(admin_client_en, {"rule": rule}).status_code == 200
    refused = post_preview(admin_client_en, {"rule": rule, "segment": segment.pk})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_rule"
    assert refused.json()["errors"]["rule"][0]["path"] == "$.value[0]"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"\xff\xfe", 400, "invalid_encoding"),
        (b"[" * 100 + b"]" * 100, 400, "json_too_deep"),
        ([1, 2], 400, "invalid_request"),
        ({"segment": 1}, 400, "invalid_request"),
        (
            {"rule": {"field": "gender", "op": "eq", "value": "male"}, "segment": "1"},
            400,
            "invalid_request",
        ),
        (
            {"rule": {"field": "gender", "op": "eq", "value": "male"}, "segment": True},
            400,
            "invalid_request",
        ),
        ({"rule": {"field": "city", "op": "eq", "value": "\ud800"}}, 400, "invalid_text"),
        ({"rule": {"field": "city", "op": "eq", "value": "a\x00b"}}, 400, "invalid_text"),
        ({"rule": None}, 400, "invalid_rule"),
        ({"rule": "all"}, 400, "invalid_rule"),
        (
            {"rule": {"any": [{"field": "member_level", "op": "eq", "value": 1}] * 201}},
            400,
            "invalid_rule",
        ),
        ({"rule": {"field": "city", "op": "in", "value": ["x"] * 1001}}, 400, "invalid_rule"),
        ({"rule": {"field": "spend", "op": "gt", "value": 1e400}}, 400, "malformed_json"),
        ({"rule": {"field": "tag", "op": "has", "value": 10**30}}, 400, "invalid_rule"),
    ],
)
def test_hostile_preview_requests_are_refused_with_a_code(
    admin_client_en: Client, body: Any, status: int, code: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = admin_client_en.post(PREVIEW_URL, raw, content_type="application/json")
    assert response.status_code == status
    assert response.json()["code"] == code


def test_a_segment_id_beyond_any_row_is_no_server_error(admin_client_en: Client) -> None:
    rule = {"field": "gender", "op": "eq", "value": "male"}
    response = post_preview(admin_client_en, {"rule": rule, "segment": 10**20})
    assert response.status_code == 200
    assert response.json()["size"] == 0


def test_the_preview_takes_only_posts(admin_client_en: Client) -> None:
    assert admin_client_en.get(PREVIEW_URL).status_code == 405


def test_only_those_who_may_edit_segments_preview() -> None:
    rule = {"field": "gender", "op": "eq", "value": "female"}
    viewer = post_preview(staff_client("view_segment"), {"rule": rule})
    assert viewer.status_code == 403
    assert viewer.json()["code"] == "permission_denied"
    assert post_preview(staff_client("add_segment"), {"rule": rule}).status_code == 200
    assert post_preview(staff_client("change_segment"), {"rule": rule}).status_code == 200
    anonymous = Client().post(PREVIEW_URL, json.dumps({"rule": rule}), "application/json")
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]


# --- What a rule picks by name ----------------------------------------------------------------


def test_tags_are_found_by_their_name_or_their_groups(admin_client_en: Client) -> None:
    members = TagGroupFactory(name="会员等级")
    vip = TagFactory(group=members, name="VIP")
    plain = TagFactory(group=members, name="普通会员")
    TagFactory(group=TagGroupFactory(name="兴趣"), name="美妆")
    by_name = admin_client_en.get(options_url("tag"), {"q": "vip"}).json()
    assert by_name == {"results": [{"id": vip.pk, "label": "会员等级 / VIP"}]}
    by_group = admin_client_en.get(options_url("tag"), {"q": "会员等级"}).json()
    assert [option["id"] for option in by_group["results"]] == [vip.pk, plain.pk]


def test_each_kind_lists_its_rows_and_labels_the_ids_asked_for(
    admin_client_en: Client, django_assert_max_num_queries: Any
) -> None:
    group = GroupFactory(name="面膜福利群")
    GroupFactory(name="新品试用群")
    tag_group = TagGroupFactory(name="肤质")
    segment = SegmentFactory(
        name="高价值复购", rule={"field": "gender", "op": "eq", "value": "male"}
    )
    assert admin_client_en.get(options_url("group"), {"q": "面膜"}).json()["results"] == [
        {"id": group.pk, "label": "面膜福利群"}
    ]
    assert admin_client_en.get(options_url("tag_group"), {"q": "肤"}).json()["results"] == [
        {"id": tag_group.pk, "label": "肤质"}
    ]
    with django_assert_max_num_queries(4):  # the session, the user, the rows
        labelled = admin_client_en.get(options_url("segment"), {"ids": f"{segment.pk},999999"})
    assert labelled.json()["results"] == [{"id": segment.pk, "label": "高价值复购"}]


def test_owners_are_picked_by_name_and_held_by_their_wecom_userid(
    admin_client_en: Client,
) -> None:
    with translation.override("zh-hans"):
        owner = catalogue_fields(rule_catalogue())["owner"]
    assert (owner["label"], owner["kind"], owner["picks"]) == ("跟进人", "string", "staff")
    li = StaffMemberFactory(wecom_userid="LiNa", name="李娜")
    StaffMemberFactory(wecom_userid="zhangwei", name="张伟")
    nameless = StaffMemberFactory(wecom_userid="wx-guide-7", name="")
    found = admin_client_en.get(options_url("staff"), {"q": "李"}).json()
    assert found == {"results": [{"id": "LiNa", "label": "李娜"}]}
    labelled = admin_client_en.get(options_url("staff"), {"ids": "LiNa,wx-guide-7,gone"}).json()
    assert labelled["results"] == [
        {"id": nameless.wecom_userid, "label": "wx-guide-7"},
        {"id": li.wecom_userid, "label": "李娜"},
    ]
    customer = CustomerFactory(owner=li)
    CustomerFactory(owner=None)
    rule = {"field": "owner", "op": "in", "value": ["LiNa"]}
    assert [c["id"] for c in post_preview(admin_client_en, {"rule": rule}).json()["sample"]] == [
        customer.pk
    ]


def test_a_search_lists_at_most_a_page_of_rows(admin_client_en: Client) -> None:
    TagFactory.create_batch(RULE_REFERENCE_OPTIONS + 5, group=TagGroupFactory(name="批量"))
    results = admin_client_en.get(options_url("tag")).json()["results"]
    assert len(results) == RULE_REFERENCE_OPTIONS


@pytest.mark.parametrize(
    ("kind", "query", "status", "code"),
    [
        ("customer", {}, 404, "not_found"),
        ("tag", {"ids": "1,abc"}, 400, "invalid_request"),
        ("tag", {"ids": "-1"}, 400, "invalid_request"),
        ("tag", {"ids": "9" * 40}, 400, "invalid_request"),
        ("tag", {"ids": ",".join(["1"] * 1001)}, 400, "invalid_request"),
        ("tag", {"q": "x" * 65}, 400, "invalid_request"),
        ("tag", {"q": "a\x00b"}, 400, "invalid_request"),
        ("group", {"ids": "١"}, 400, "invalid_request"),
        ("staff", {"ids": "x" * 65}, 400, "invalid_request"),
        ("staff", {"ids": "a\x00b"}, 400, "invalid_request"),
    ],
)
def test_hostile_option_requests_are_refused_with_a_code(
    admin_client_en: Client, kind: str, query: dict[str, str], status: int, code: str
) -> None:
    response = admin_client_en.get(options_url(kind), query)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_only_those_who_may_edit_segments_list_options() -> None:
    TagFactory(name="VIP")
    refused = staff_client("view_segment").get(options_url("tag"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert staff_client("change_segment").get(options_url("tag")).status_code == 200
