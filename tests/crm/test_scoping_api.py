"""Staff scoping in the integration API: a key bound to staff member A answers for A's
customers only, on every endpoint that reads or writes customer data; every other endpoint
(those counting every customer) refuses it with `owner_scope_refused`. An unbound key sees
everyone."""

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern
from rest_framework.test import APIClient

from campaigns.api.urls import urlpatterns as campaigns_urlpatterns
from console.api.urls import urlpatterns as console_urlpatterns
from core.services.api_keys import SCOPES, api_key_create
from crm.api.urls import urlpatterns as crm_urlpatterns
from crm.models import (
    Consent,
    ConsentEvent,
    Customer,
    CustomerTag,
    GroupMembership,
    Interaction,
    Order,
    StaffMember,
)
from segments.api.urls import urlpatterns as segments_urlpatterns
from tests.factories import (
    ConsentEventFactory,
    ConsentFactory,
    CustomerFactory,
    DeliveryFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    LifecycleTransitionFactory,
    OrderFactory,
    SegmentMembershipFactory,
    StaffMemberFactory,
    TagFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ALL_PATTERNS = [
    *crm_urlpatterns,
    *segments_urlpatterns,
    *campaigns_urlpatterns,
    *console_urlpatterns,
]

# The views that narrow what they read and write to the caller's customers, and those that
# touch no customer. Every other view counts every customer: refused to a bound key.
SCOPED_VIEWS = {
    "CustomerListView",
    "CustomerBulkView",
    "CustomerDetailView",
    "CustomerByIdentityView",
    "CustomerLookupView",
    "CustomerIdentityUpsertView",
    "CustomerPersonalExportView",
    "CustomerEraseView",
    "OrderListView",
    "OrderDetailView",
    "OrderBulkView",
    "InteractionListView",
    "InteractionBulkView",
    "ConsentView",
    "ConsentEventListView",
    "TagsAssignView",
    "TagsRemoveView",
    "GroupMembersView",
    "TransitionFeedView",
    "CustomerSegmentsView",
    "CustomerDeliveryListView",
}
# Views whose reads are narrowed to the caller's customers (or touch none) but whose writes
# would reach every owner's customers: reads only for a bound key.
READ_VIEWS = {
    "TagGroupListView",
    "TagGroupDetailView",
    "TagListView",
    "TagDetailView",
    "GroupListView",
    "GroupDetailView",
}

PHONE_A = "13800000001"
PHONE_B = "13800000002"


@dataclass
class World:
    staff_a: StaffMember
    staff_b: StaffMember
    a1: Customer
    a2: Customer
    b1: Customer
    order_a: Order
    order_b: Order
    group_id: int
    bound: APIClient
    unbound: APIClient


def _client(*, staff_member: StaffMember | None, scopes: Any = SCOPES) -> APIClient:
    api_key, raw_key = api_key_create(name="sidebar", scopes=scopes)
    api_key.staff_member_id = staff_member.pk if staff_member else None
    api_key.save(update_fields=["staff_member_id"])
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def world() -> World:
    staff_a = StaffMemberFactory(wecom_userid="staff-a")
    staff_b = StaffMemberFactory(wecom_userid="staff-b")
    a1 = CustomerFactory(owner=staff_a, display_name="甲一")
    a2 = CustomerFactory(owner=staff_a, display_name="甲二")
    b1 = CustomerFactory(owner=staff_b, display_name="乙一")
    IdentityFactory(customer=a1, provider="phone", raw_value=PHONE_A)
    IdentityFactory(customer=b1, provider="phone", raw_value=PHONE_B)
    group = GroupFactory()
    orders = {}
    for customer in (a1, a2, b1):
        orders[customer.pk] = OrderFactory(customer=customer)
        InteractionFactory(customer=customer)
        ConsentFactory(customer=customer)
        ConsentEventFactory(customer=customer)
        GroupMembershipFactory(group=group, customer=customer)
        LifecycleTransitionFactory(customer=customer)
        SegmentMembershipFactory(customer=customer)
        DeliveryFactory(customer=customer)
    return World(
        staff_a=staff_a,
        staff_b=staff_b,
        a1=a1,
        a2=a2,
        b1=b1,
        order_a=orders[a1.pk],
        order_b=orders[b1.pk],
        group_id=group.pk,
        bound=_client(staff_member=staff_a),
        unbound=_client(staff_member=None),
    )


def _customer_ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(row["customer_id"] for row in rows)


# (url template, how to read the customer ids of the answer) of every list that reads
# customers or customer-keyed rows.
LISTS = [
    ("/api/v1/customers", lambda rows: sorted(row["id"] for row in rows)),
    ("/api/v1/orders", _customer_ids),
    ("/api/v1/interactions", _customer_ids),
    ("/api/v1/consents", _customer_ids),
    ("/api/v1/consents/events", _customer_ids),
    ("/api/v1/groups/{group_id}/members", _customer_ids),
    ("/api/v1/lifecycle-transitions", _customer_ids),
]


@pytest.mark.parametrize(("url", "ids_of"), LISTS)
def test_a_bound_key_lists_only_its_owners_customers(world: World, url, ids_of) -> None:
    url = url.format(group_id=world.group_id)
    everyone = sorted([world.a1.pk, world.a2.pk, world.b1.pk])
    own = sorted([world.a1.pk, world.a2.pk])

    response = world.bound.get(url)
    assert response.status_code == 200, response.json()
    assert ids_of(response.json()["results"]) == own

    response = world.unbound.get(url)
    assert ids_of(response.json()["results"]) == everyone


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/orders?customer_id={b1}",
        "/api/v1/interactions?customer_id={b1}",
        "/api/v1/consents?customer_id={b1}",
        "/api/v1/consents/events?customer_id={b1}",
        "/api/v1/customers?search=" + PHONE_B,
        "/api/v1/customers?search=乙一",
        "/api/v1/customers?owner=staff-b",
    ],
)
def test_a_bound_key_filters_and_searches_find_nothing_of_another_owner(world, url) -> None:
    url = url.format(b1=world.b1.pk)
    assert world.bound.get(url).json()["results"] == []
    assert len(world.unbound.get(url).json()["results"]) == 1


def test_a_bound_key_searches_its_own_customers(world: World) -> None:
    rows = world.bound.get("/api/v1/customers?search=" + PHONE_A).json()["results"]
    assert [row["id"] for row in rows] == [world.a1.pk]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers/{id}",
        "/api/v1/customers/{id}/segments",
        "/api/v1/customers/{id}/deliveries",
        "/api/v1/customers/by-identity/phone/{phone}",
        "/api/v1/orders/{order}",
    ],
)
def test_a_bound_key_reads_its_own_customer_and_not_another_owners(world, url) -> None:
    own = url.format(id=world.a1.pk, phone=PHONE_A, order=world.order_a.pk)
    other = url.format(id=world.b1.pk, phone=PHONE_B, order=world.order_b.pk)
    assert world.bound.get(own).status_code == 200
    refused = world.bound.get(other)
    assert refused.status_code == 404
    assert refused.json()["code"] in ("customer_not_found", "not_found")
    assert world.unbound.get(other).status_code == 200


def test_a_merged_customer_of_another_owner_names_no_survivor(world: World) -> None:
    response = world.bound.get("/api/v1/customers/999999")
    assert response.status_code == 404
    assert "survivor_id" not in response.json()


def test_a_bound_key_may_not_change_another_owners_customer(world: World) -> None:
    response = world.bound.patch(f"/api/v1/customers/{world.b1.pk}", {"display_name": "改"})
    assert response.status_code == 404
    response = world.bound.put(
        f"/api/v1/customers/by-identity/phone/{PHONE_B}", {"display_name": "改"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "customer_out_of_scope"
    world.b1.refresh_from_db()
    assert world.b1.display_name == "乙一"
    assert world.b1.owner_id == world.staff_b.pk


def test_a_bound_key_may_not_give_its_customer_away(world: World) -> None:
    response = world.bound.patch(f"/api/v1/customers/{world.a1.pk}", {"owner": "staff-b"})
    assert response.status_code == 400
    assert response.json()["code"] == "owner_out_of_scope"
    world.a1.refresh_from_db()
    assert world.a1.owner_id == world.staff_a.pk


def test_a_customer_a_bound_key_creates_is_its_owners(world: World) -> None:
    response = world.bound.put(
        "/api/v1/customers/by-identity/phone/13800000009", {"display_name": "新"}
    )
    assert response.status_code == 201
    customer = Customer.objects.get(pk=response.json()["customer"]["id"])
    assert customer.owner_id == world.staff_a.pk


def test_bulk_upsert_refuses_the_rows_of_another_owners_customers_alone(world: World) -> None:
    rows = [
        {"identities": [{"provider": "phone", "value": PHONE_B}], "display_name": "改乙"},
        {"identities": [{"provider": "phone", "value": PHONE_A}], "display_name": "改甲"},
        {"identities": [{"provider": "phone", "value": "13800000008"}], "display_name": "新"},
        {
            "identities": [{"provider": "phone", "value": "13800000007"}],
            "owner": "staff-b",
        },
    ]
    customers_before = Customer.objects.count()
    response = world.bound.post("/api/v1/customers/bulk", {"customers": rows})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [(row["index"], row["code"]) for row in body["rejected"]] == [
        (0, "customer_out_of_scope"),
        (3, "owner_out_of_scope"),
    ]
    assert (body["created"], body["updated"]) == (1, 1)
    world.a1.refresh_from_db()
    world.b1.refresh_from_db()
    assert (world.a1.display_name, world.b1.display_name) == ("改甲", "乙一")
    created = Customer.objects.get(display_name="新")
    assert created.owner_id == world.staff_a.pk
    assert Customer.objects.count() == customers_before + 1


@pytest.mark.parametrize(
    ("url", "field", "row", "model"),
    [
        (
            "/api/v1/orders/bulk",
            "orders",
            {
                "source": "shop",
                "external_id": "X-{n}",
                "status": "paid",
                "total_amount": "10.00",
                "paid_at": "2026-01-02T03:04:05+08:00",
            },
            Order,
        ),
        (
            "/api/v1/interactions/bulk",
            "interactions",
            {
                "kind": "content_view",
                "occurred_at": "2026-01-02T03:04:05+08:00",
                "source": "shop",
                "idempotency_key": "k-{n}",
            },
            Interaction,
        ),
    ],
)
def test_bulk_ingestion_refuses_rows_of_another_owners_customers(
    world: World, url, field, row, model
) -> None:
    rows = []
    for n, phone in enumerate([PHONE_B, PHONE_A]):
        one = {key: value.format(n=n) for key, value in row.items()}
        rows.append({**one, "customer": {"identities": [{"provider": "phone", "value": phone}]}})
    before_b = model.objects.filter(customer=world.b1).count()
    before_a = model.objects.filter(customer=world.a1).count()
    response = world.bound.post(url, {field: rows})
    assert response.status_code == 200, response.json()
    assert [(r["index"], r.get("code")) for r in response.json()["rejected"]] == [
        (0, "customer_out_of_scope")
    ]
    assert model.objects.filter(customer=world.b1).count() == before_b
    assert model.objects.filter(customer=world.a1).count() == before_a + 1


def test_consent_of_another_owners_customer_is_refused(world: World) -> None:
    before = (Consent.objects.count(), ConsentEvent.objects.count())
    body = {"channel": "wecom", "status": "opted_out", "source": "sidebar"}
    response = world.bound.post("/api/v1/consents", {**body, "customer_id": world.b1.pk})
    assert response.status_code == 404
    identities = [{"provider": "phone", "value": PHONE_B}]
    response = world.bound.post("/api/v1/consents", {**body, "identities": identities})
    assert response.status_code == 404
    assert response.json()["code"] == "customer_out_of_scope"
    assert (Consent.objects.count(), ConsentEvent.objects.count()) == before
    response = world.bound.post("/api/v1/consents", {**body, "customer_id": world.a1.pk})
    assert response.status_code == 201


@pytest.mark.parametrize("action", ["assign", "remove"])
def test_tags_of_another_owners_customer_are_not_changed(world: World, action) -> None:
    tag = TagFactory()
    CustomerTag.objects.create(customer=world.b1, tag=tag)
    before = sorted(CustomerTag.objects.values_list("customer_id", "tag_id"))
    for refs in (
        {"customer_ids": [world.a1.pk, world.b1.pk]},
        {"identities": [{"provider": "phone", "value": PHONE_B}]},
    ):
        response = world.bound.post(f"/api/v1/tags/{action}", {"tags": [{"id": tag.pk}], **refs})
        assert response.status_code == 404
        assert response.json()["code"] == "customer_out_of_scope"
        assert sorted(CustomerTag.objects.values_list("customer_id", "tag_id")) == before
    response = world.bound.post(
        f"/api/v1/tags/{action}", {"tags": [{"id": tag.pk}], "customer_ids": [world.a1.pk]}
    )
    assert response.status_code == 200


def test_lookups_with_the_identity_in_the_body_are_scoped(world: World) -> None:
    lookup = {"provider": "phone", "value": PHONE_B}
    response = world.bound.post("/api/v1/customers/lookup", lookup, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"
    found = world.unbound.post("/api/v1/customers/lookup", lookup, format="json").json()
    assert found["customer"]["id"] == world.b1.pk
    mine = {"provider": "phone", "value": PHONE_A}
    response = world.bound.post("/api/v1/customers/lookup", mine, format="json")
    assert response.json()["customer"]["id"] == world.a1.pk
    before = Customer.objects.get(pk=world.b1.pk).display_name
    response = world.bound.post(
        "/api/v1/customers/by-identity",
        {"identity": lookup, "display_name": "Taken over"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "customer_out_of_scope"
    assert Customer.objects.get(pk=world.b1.pk).display_name == before


def test_personal_export_and_erase_of_another_owners_customer_are_unknown(world: World) -> None:
    response = world.bound.get(f"/api/v1/customers/{world.b1.pk}/export")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"
    response = world.bound.post(f"/api/v1/customers/{world.b1.pk}/erase", {}, format="json")
    assert response.status_code == 404
    assert Customer.objects.filter(pk=world.b1.pk).exists()
    assert world.bound.get(f"/api/v1/customers/{world.a1.pk}/export").status_code == 200
    response = world.bound.post(f"/api/v1/customers/{world.a1.pk}/erase", {}, format="json")
    assert response.status_code == 200
    assert not Customer.objects.filter(pk=world.a1.pk).exists()


def test_a_bound_key_may_not_sync_a_groups_members(world: World) -> None:
    before = GroupMembership.objects.filter(left_at__isnull=True).count()
    response = world.bound.put(
        f"/api/v1/groups/{world.group_id}/members", {"customer_ids": [world.a1.pk]}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "owner_scope_refused"
    assert GroupMembership.objects.filter(left_at__isnull=True).count() == before


ARGUMENTS = {"customer_id": "1", "order_id": "1", "group_id": "1", "tag_id": "1"}
ARGUMENTS |= {"contact_way_id": "1"}
ARGUMENTS |= {"segment_id": "1", "rule_id": "1", "campaign_id": "1", "name": "clv"}
ARGUMENTS |= {"provider": "phone", "value": PHONE_A}


def _routes() -> list[tuple[str, str, str]]:
    routes = []
    for pattern in ALL_PATTERNS:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        url = "/api/v1/" + str(pattern.pattern)
        for name, value in ARGUMENTS.items():
            url = url.replace(f"<int:{name}>", value).replace(f"<str:{name}>", value)
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                routes.append((method, url, view.__name__))
    return routes


ROUTES = _routes()


def test_every_view_touching_customers_is_classified() -> None:
    """A new view is refused to bound keys until it says how it scopes."""
    declared = {
        view: getattr(pattern.callback.view_class, "customer_scope", None)  # type: ignore[attr-defined]
        for pattern in ALL_PATTERNS
        for view in [pattern.callback.view_class.__name__]  # type: ignore[attr-defined]
    }
    assert {view for view, scope in declared.items() if scope == "owner"} == SCOPED_VIEWS
    assert {view for view, scope in declared.items() if scope == "reads"} == READ_VIEWS


@pytest.mark.parametrize(
    ("method", "url", "view"),
    [
        route
        for route in ROUTES
        if route[2] not in SCOPED_VIEWS and not (route[2] in READ_VIEWS and route[0] == "get")
    ],
)
def test_endpoints_counting_every_customer_refuse_a_bound_key(world, method, url, view) -> None:
    response = getattr(world.bound, method)(url, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "owner_scope_refused"
    # Not the scope's refusal: the same key unbound is let through.
    assert getattr(world.unbound, method)(url, {}, format="json").status_code != 403


def test_a_scoped_session_user_of_the_browsable_api_sees_their_own(world: World) -> None:
    user = UserFactory()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crm", codename="view_customer")
    )
    world.staff_a.user = user
    world.staff_a.save(update_fields=["user"])
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    rows = client.get("/api/v1/customers").json()["results"]
    assert sorted(row["id"] for row in rows) == sorted([world.a1.pk, world.a2.pk])
    assert client.get("/api/v1/segments").json()["code"] == "owner_scope_refused"


def test_the_birthday_is_masked_without_the_personal_data_scope(world: World) -> None:
    world.a1.birthday = date(1990, 5, 6)
    world.a1.save(update_fields=["birthday"])
    reader = _client(staff_member=None, scopes=["customers:read"])
    for url in ("/api/v1/customers", f"/api/v1/customers/{world.a1.pk}"):
        masked = reader.get(url).json()
        unmasked = world.unbound.get(url).json()
        if "results" in masked:
            masked, unmasked = (
                next(row for row in body["results"] if row["id"] == world.a1.pk)
                for body in (masked, unmasked)
            )
        else:
            masked, unmasked = masked["customer"], unmasked["customer"]
        assert (masked["birthday"], unmasked["birthday"]) == ("****-**-**", "1990-05-06")


def test_a_bound_key_counts_only_its_owners_tag_holders_and_group_members(world) -> None:
    tag = TagFactory()
    for customer in (world.a1, world.b1):
        CustomerTag.objects.create(customer=customer, tag=tag)
    bound_tags = world.bound.get("/api/v1/tags").json()["results"]
    assert [(row["id"], row["customer_count"]) for row in bound_tags] == [(tag.pk, 1)]
    assert world.bound.get(f"/api/v1/tags/{tag.pk}").json()["customer_count"] == 1
    assert world.unbound.get(f"/api/v1/tags/{tag.pk}").json()["customer_count"] == 2

    groups = world.bound.get("/api/v1/groups").json()["results"]
    assert [(row["id"], row["member_count"]) for row in groups] == [(world.group_id, 2)]
    assert world.bound.get(f"/api/v1/groups/{world.group_id}").json()["member_count"] == 2
    assert world.unbound.get(f"/api/v1/groups/{world.group_id}").json()["member_count"] == 3


def test_a_bound_key_may_not_change_what_every_owners_customers_hold(world: World) -> None:
    tag = TagFactory()
    CustomerTag.objects.create(customer=world.b1, tag=tag)
    for method, url in [
        ("delete", f"/api/v1/tags/{tag.pk}"),
        ("delete", f"/api/v1/tag-groups/{tag.group_id}"),
        ("delete", f"/api/v1/groups/{world.group_id}"),
        ("post", "/api/v1/tags"),
    ]:
        response = getattr(world.bound, method)(url, {}, format="json")
        assert response.status_code == 403, url
        assert response.json()["code"] == "owner_scope_refused"
    assert CustomerTag.objects.filter(customer=world.b1, tag=tag).exists()
    assert GroupMembership.objects.filter(group_id=world.group_id).count() == 3
