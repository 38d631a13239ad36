"""Staff scoping and roles in the admin: a 导购 (the 导购 group, bound to staff member A) sees
A's customers only on every page showing customers or their rows (lists and their counts,
search, filters, the customer page, exports), and another owner's customer is not found; a
运营 user sees every customer with identities and birthdays masked; a 审计 user is refused the
customer pages; pages counting every customer are refused to scoped users."""

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.services.roles import ANALYST, AUDITOR, OPERATIONS, SALES
from crm.models import Customer, StaffMember
from tests.factories import (
    CampaignFactory,
    ConsentFactory,
    CustomerFactory,
    CustomerMergeFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    DeliveryFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    LifecycleTransitionFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    StaffMemberFactory,
    TagFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PHONE_A = "13800000001"
PHONE_B = "13800000002"


@dataclass
class World:
    staff_a: StaffMember
    a1: Customer
    a2: Customer
    b1: Customer
    rows: dict[str, dict[int, int]]  # model -> customer id -> row id
    tag_id: int


def _in_group(name: str, *, staff_member: StaffMember | None = None) -> User:
    user = UserFactory()
    user.groups.add(Group.objects.get(name=name))
    if staff_member is not None:
        staff_member.user = user
        staff_member.save(update_fields=["user"])
    return User.objects.get(pk=user.pk)  # no cached permissions


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def world() -> World:
    staff_a = StaffMemberFactory(wecom_userid="staff-a")
    staff_b = StaffMemberFactory(wecom_userid="staff-b")
    a1 = CustomerFactory(owner=staff_a, display_name="甲一", birthday=date(1990, 5, 6))
    a2 = CustomerFactory(owner=staff_a, display_name="甲二")
    b1 = CustomerFactory(owner=staff_b, display_name="乙一", birthday=date(1991, 7, 8))
    IdentityFactory(customer=a1, provider="phone", raw_value=PHONE_A)
    IdentityFactory(customer=b1, provider="phone", raw_value=PHONE_B)
    tag = TagFactory()
    group = GroupFactory()
    campaign = CampaignFactory()
    rows: dict[str, dict[int, int]] = {}

    def keep(model: str, customer: Customer, row: Any) -> None:
        rows.setdefault(model, {})[customer.pk] = row.pk

    for customer in (a1, a2, b1):
        keep("order", customer, OrderFactory(customer=customer))
        keep("interaction", customer, InteractionFactory(customer=customer))
        keep("consent", customer, ConsentFactory(customer=customer))
        keep("groupmembership", customer, GroupMembershipFactory(group=group, customer=customer))
        keep("customermetrics", customer, CustomerMetricsFactory(customer=customer))
        keep("lifecycletransition", customer, LifecycleTransitionFactory(customer=customer))
        keep("segmentmembership", customer, SegmentMembershipFactory(customer=customer))
        keep("delivery", customer, DeliveryFactory(customer=customer, campaign=campaign))
        keep("customermerge", customer, CustomerMergeFactory(survivor=customer))
        CustomerTagFactory(customer=customer, tag=tag)
    return World(staff_a=staff_a, a1=a1, a2=a2, b1=b1, rows=rows, tag_id=tag.pk)


def _scoped_viewer(world: World) -> User:
    """A user bound to A holding every view permission of the customer-keyed pages, but not
    view_all_customers (the 导购 role holds fewer: deliveries and merges are not its)."""
    codenames = [
        "view_customer",
        "view_order",
        "view_interaction",
        "view_consent",
        "view_groupmembership",
        "view_customermerge",
        "view_customermetrics",
        "view_lifecycletransition",
        "view_segmentmembership",
        "view_delivery",
        "view_segment",
        "change_segment",
        "add_segment",
        "view_campaign",
        "view_tag",
        "view_group",
        "add_customerexport",
        "view_personal_data",
    ]
    user = UserFactory(permissions=Permission.objects.filter(codename__in=codenames))
    world.staff_a.user = user
    world.staff_a.save(update_fields=["user"])
    return User.objects.get(pk=user.pk)


# (admin model path, the customer id of a row as the list's page holds it)
CUSTOMER_KEYED_PAGES = [
    ("crm/customer", "customer", lambda row: row.pk),
    ("crm/order", "order", lambda row: row.customer_id),
    ("crm/interaction", "interaction", lambda row: row.customer_id),
    ("crm/consent", "consent", lambda row: row.customer_id),
    ("crm/groupmembership", "groupmembership", lambda row: row.customer_id),
    ("crm/customermerge", "customermerge", lambda row: row.survivor_id),
    ("segments/customermetrics", "customermetrics", lambda row: row.customer_id),
    ("segments/lifecycletransition", "lifecycletransition", lambda row: row.customer_id),
    ("segments/segmentmembership", "segmentmembership", lambda row: row.customer_id),
    ("campaigns/delivery", "delivery", lambda row: row.customer_id),
]


@pytest.mark.parametrize(("path", "model", "customer_of"), CUSTOMER_KEYED_PAGES)
def test_a_scoped_user_lists_and_opens_only_their_own_customers_rows(
    world: World, path, model, customer_of
) -> None:
    client = _client(_scoped_viewer(world))
    response = client.get(f"/admin/{path}/")
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert sorted(customer_of(row) for row in changelist.result_list) == sorted(
        [world.a1.pk, world.a2.pk]
    )
    assert changelist.result_count == 2  # the paginator's count

    own = world.a1.pk if model == "customer" else world.rows[model][world.a1.pk]
    other = world.b1.pk if model == "customer" else world.rows[model][world.b1.pk]
    assert client.get(f"/admin/{path}/{own}/change/").status_code == 200
    refused = client.get(f"/admin/{path}/{other}/change/")
    assert refused.status_code == 302  # "does not exist": back to the admin's index
    assert refused["Location"] == reverse("admin:index")


@pytest.mark.parametrize(("path", "model", "customer_of"), CUSTOMER_KEYED_PAGES)
def test_an_unscoped_user_lists_every_customers_rows(world: World, path, model, customer_of):
    client = _client(UserFactory(is_superuser=True))
    changelist = client.get(f"/admin/{path}/").context["cl"]
    assert changelist.result_count == 3


def test_a_sales_user_sees_their_customers_on_the_customer_list_search_and_filters(world):
    client = _client(_in_group(SALES, staff_member=world.staff_a))
    changelist = client.get("/admin/crm/customer/").context["cl"]
    assert sorted(c.pk for c in changelist.result_list) == sorted([world.a1.pk, world.a2.pk])

    for term in (PHONE_B, "乙一"):
        assert client.get("/admin/crm/customer/", {"q": term}).context["cl"].result_count == 0
    found = client.get("/admin/crm/customer/", {"q": PHONE_A}).context["cl"]
    assert [c.pk for c in found.result_list] == [world.a1.pk]

    tagged = client.get("/admin/crm/customer/", {"tag": world.tag_id}).context["cl"]
    assert tagged.result_count == 2

    # The filters' counts (facets) are of the user's customers.
    faceted = client.get("/admin/crm/customer/", {"_facets": "1"})
    channel = next(
        spec for spec in faceted.context["cl"].filter_specs if spec.title == "source channel"
    )
    # Facets are written in each choice's label: every customer came from Douyin.
    labels = [str(choice["display"]) for choice in channel.choices(faceted.context["cl"])]
    assert any(label.endswith("(2)") for label in labels), labels
    assert not any(label.endswith("(3)") for label in labels), labels
    # No filter by other staff members.
    assert all(spec.title != "owner" for spec in faceted.context["cl"].filter_specs)


def test_a_sales_user_opens_their_customers_page_and_not_another_owners(world: World) -> None:
    client = _client(_in_group(SALES, staff_member=world.staff_a))
    page = client.get(f"/admin/crm/customer/{world.a1.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "甲一" in content
    assert PHONE_A in content  # their own customer's contact details
    assert "1990-05-06" in content
    assert "乙一" not in content

    refused = client.get(f"/admin/crm/customer/{world.b1.pk}/change/", follow=True)
    assert "乙一" not in refused.content.decode()
    assert PHONE_B not in refused.content.decode()
    assert refused.redirect_chain[-1][0] == reverse("admin:index")


def test_a_sales_user_may_not_give_a_customer_away(world: World) -> None:
    client = _client(_in_group(SALES, staff_member=world.staff_a))
    page = client.get(f"/admin/crm/customer/{world.a1.pk}/change/")
    assert "owner" not in page.context["adminform"].form.fields


def test_a_sales_user_without_a_staff_member_sees_no_customer(world: World) -> None:
    client = _client(_in_group(SALES))
    assert client.get("/admin/crm/customer/").context["cl"].result_count == 0
    assert client.get(f"/admin/crm/customer/{world.a1.pk}/change/").status_code == 302


def test_a_sales_user_is_not_offered_exports_nor_every_customers_counts(world: World) -> None:
    client = _client(_in_group(SALES, staff_member=world.staff_a))
    assert "customer-export" not in client.get("/admin/crm/customer/").content.decode()
    assert client.get("/admin/crm/customer/export/csv/").status_code == 403
    tags = client.get("/admin/crm/tag/")
    assert tags.status_code == 200
    assert "customer_count" not in tags.context["cl"].list_display

    index = client.get("/admin/")
    assert index.context["overview"]["scoped_notice"]
    assert "kpis" not in index.context["overview"]
    assert 'id="overview-scoped-notice"' in index.content.decode()


def test_the_operations_user_sees_every_customer_masked(world: World) -> None:
    client = _client(_in_group(OPERATIONS))
    assert client.get("/admin/crm/customer/").context["cl"].result_count == 3
    page = client.get(f"/admin/crm/customer/{world.b1.pk}/change/")
    content = page.content.decode()
    assert page.status_code == 200
    assert "乙一" in content
    assert PHONE_B not in content
    assert "13****02" in content
    assert "1991-07-08" not in content
    assert content.count("****-**-**") == 1  # in the birthday's place, once
    index = client.get("/admin/")
    assert "scoped_notice" not in index.context["overview"]


def test_the_auditor_is_refused_the_customer_pages(world: World) -> None:
    client = _client(_in_group(AUDITOR))
    assert client.get("/admin/crm/customer/").status_code == 403
    assert client.get(f"/admin/crm/customer/{world.a1.pk}/change/").status_code == 403
    assert client.get("/admin/crm/order/").status_code == 403
    assert client.get("/admin/crm/customer/export/csv/").status_code == 403
    # The overview does not send the auditor to a list it may not open.
    index = client.get("/admin/").content.decode()
    assert 'id="overview-scoped-notice"' in index
    assert "/admin/crm/customer/" not in index


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_analysts_export_holds_every_customer_without_personal_data(world: World) -> None:
    client = _client(_in_group(ANALYST))
    response = client.get("/admin/crm/customer/export/csv/")
    assert response.status_code == 200
    header, *rows = _csv_rows(response)
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(by_id) == sorted([world.a1.pk, world.a2.pk, world.b1.pk])
    a1 = by_id[world.a1.pk]
    assert (a1["Display name"], a1["Phone"], a1["Birthday"]) == ("甲**", "13****01", "****-**-**")
    assert by_id[world.a2.pk]["Birthday"] == ""
    text = "\n".join(",".join(row) for row in rows)
    for value in ("甲一", "乙一", PHONE_A, PHONE_B, "1990-05-06", "1991-07-08"):
        assert value not in text


def test_a_scoped_users_export_holds_their_own_customers(world: World) -> None:
    client = _client(_scoped_viewer(world))
    header, *rows = _csv_rows(client.get("/admin/crm/customer/export/csv/"))
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(by_id) == sorted([world.a1.pk, world.a2.pk])
    assert by_id[world.a1.pk]["Display name"] == "甲一"
    assert by_id[world.a1.pk]["Birthday"] == "1990-05-06"


def test_pages_counting_every_customer_are_refused_to_a_scoped_user(world: World) -> None:
    client = _client(_scoped_viewer(world))
    segment = SegmentFactory()
    campaign = CampaignFactory()
    assert client.get("/admin/segments/segment/").status_code == 403
    assert client.get(f"/admin/segments/segment/{segment.pk}/portrait/").status_code == 403
    preview = client.post(
        "/admin/segments/segment/builder/preview/", {}, content_type="application/json"
    )
    assert preview.status_code == 403
    portrait = client.post(
        "/admin/segments/segment/portrait/", {"rule": {}}, content_type="application/json"
    )
    assert portrait.status_code == 403
    assert client.get("/admin/campaigns/campaign/").status_code == 403
    assert client.get(f"/admin/campaigns/campaign/{campaign.pk}/dry-run/").status_code == 403
    assert client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/").status_code == 403


def test_the_staff_member_page_binds_an_admin_user_and_the_user_page_shows_it(world) -> None:
    admin_client = _client(UserFactory(is_superuser=True))
    login = UserFactory(username="zhang")
    page = admin_client.get(f"/admin/crm/staffmember/{world.staff_a.pk}/change/")
    assert "user" in page.context["adminform"].form.fields
    response = admin_client.post(
        f"/admin/crm/staffmember/{world.staff_a.pk}/change/",
        {
            "wecom_userid": "staff-a",
            "name": world.staff_a.name,
            "user": login.pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    world.staff_a.refresh_from_db()
    assert world.staff_a.user_id == login.pk
    user_page = admin_client.get(f"/admin/auth/user/{login.pk}/change/").content.decode()
    assert "staff-a" in user_page


def _actions(client: Client) -> set[str]:
    form = client.get("/admin/crm/customer/").context["action_form"]
    if form is None:  # no action at all
        return set()
    return {name for name, _label in form.fields["action"].choices if name}


def test_write_actions_are_offered_only_to_roles_that_may_write(world: World) -> None:
    assert _actions(_client(_in_group(ANALYST))) == set()
    assert _actions(_client(_in_group(OPERATIONS))) == {
        "tag_customers",
        "untag_customers",
        "add_to_segment",
    }
    # A merge deletes the customers it absorbs: not a 导购's to do.
    assert _actions(_client(_in_group(SALES, staff_member=world.staff_a))) == {
        "mark_for_recomputation",
        "tag_customers",
        "untag_customers",
    }


def test_a_scoped_users_list_costs_the_same_queries_for_few_or_many_customers(world) -> None:
    client = _client(_in_group(SALES, staff_member=world.staff_a))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/crm/customer/").status_code == 200
        return len(captured)

    few = queries()
    for _ in range(5):
        customer = CustomerFactory(owner=world.staff_a)
        IdentityFactory(customer=customer, provider="phone")
    assert client.get("/admin/crm/customer/").context["cl"].result_count == 7
    assert queries() == few
