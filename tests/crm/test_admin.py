"""Operator admin: every page renders, search by identity, masking, filters, actions, language."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import ApiKey
from core.services.api_keys import api_key_authenticate, api_key_create
from crm.models import (
    Consent,
    Customer,
    CustomerMerge,
    CustomerTag,
    GroupMembership,
    Interaction,
    OrderItem,
)
from crm.selectors.customers import dirty_customer_ids
from tests.factories import (
    ConsentEventFactory,
    ConsentFactory,
    CustomerFactory,
    CustomerMergeFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    OrderFactory,
    OrderItemFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
    UserFactory,
)
from tests.support import client_of

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
MASKED = "13****78"


@pytest.fixture
def operator_client() -> Client:
    """A staff operator who may work with customers but not see personal data."""
    return client_of(
        UserFactory(
            permissions=Permission.objects.filter(content_type__app_label="crm").exclude(
                codename="view_personal_data"
            )
        )
    )


@pytest.fixture
def customer() -> Customer:
    customer = CustomerFactory(display_name="王小美", owner=StaffMemberFactory())
    IdentityFactory(customer=customer, provider="phone", raw_value=PHONE)
    CustomerTagFactory(customer=customer, tag=TagFactory(name="敏感肌"))
    GroupMembershipFactory(customer=customer)
    OrderItemFactory(order=OrderFactory(customer=customer), sku="A", unit_price=1)
    ConsentFactory(customer=customer, status="opted_out")
    ConsentEventFactory(customer=customer, status="opted_out")
    InteractionFactory(customer=customer)
    return customer


def test_every_page_renders(admin_client_en, customer) -> None:
    api_key, _ = api_key_create(name="shop", scopes=["orders"])
    merge_survivor = CustomerFactory()
    CustomerMergeFactory(survivor=merge_survivor, merged_customer_id=999)
    objects = {
        "customer": customer,
        "staffmember": customer.owner,
        "taggroup": CustomerTag.objects.get().tag.group,
        "tag": CustomerTag.objects.get().tag,
        "group": GroupMembership.objects.get().group,
        "groupmembership": GroupMembership.objects.get(),
        "order": customer.orders.get(),
        "interaction": Interaction.objects.get(),
        "consent": Consent.objects.get(),
        "customermerge": CustomerMerge.objects.get(),
        "core_apikey": api_key,
    }
    for model, obj in objects.items():
        name = model if "_" in model else f"crm_{model}"
        changelist = admin_client_en.get(reverse(f"admin:{name}_changelist"))
        assert changelist.status_code == 200, model
        change = admin_client_en.get(reverse(f"admin:{name}_change", args=[obj.pk]))
        assert change.status_code == 200, model
    assert admin_client_en.get(reverse("admin:core_apikey_add")).status_code == 200
    assert admin_client_en.get(reverse("admin:crm_customer_add")).status_code == 200


def test_search_by_full_phone_shows_it_masked_to_an_operator(operator_client, customer) -> None:
    CustomerFactory(display_name="别人")
    page = operator_client.get(reverse("admin:crm_customer_changelist"), {"q": PHONE})
    content = page.content.decode()
    assert page.status_code == 200
    assert "王小美" in content
    assert "别人" not in content
    assert MASKED in content
    assert "+86" + PHONE not in content  # the bare number is the operator's own search term
    detail = operator_client.get(reverse("admin:crm_customer_change", args=[customer.pk]))
    assert MASKED in detail.content.decode()
    assert PHONE not in detail.content.decode()


def test_a_permitted_user_sees_the_full_phone(admin_client_en, customer) -> None:
    page = admin_client_en.get(reverse("admin:crm_customer_changelist"))
    assert "+86" + PHONE in page.content.decode()


def test_filters_by_tag_and_consent(operator_client, customer) -> None:
    other = CustomerFactory(display_name="别人")
    url = reverse("admin:crm_customer_changelist")
    tag_id = CustomerTag.objects.get().tag_id
    by_tag = operator_client.get(url, {"tag": tag_id}).content.decode()
    assert "王小美" in by_tag
    assert other.display_name not in by_tag
    opted_out = operator_client.get(url, {"consent": "wecom:opted_out"}).content.decode()
    assert "王小美" in opted_out
    assert other.display_name not in opted_out
    opted_in = operator_client.get(url, {"consent": "wecom:opted_in"}).content.decode()
    assert "王小美" not in opted_in


def test_customer_changelist_costs_the_same_queries_for_1_or_20_rows(operator_client) -> None:
    url = reverse("admin:crm_customer_changelist")
    CustomerFactory(owner=StaffMemberFactory())
    operator_client.get(url)
    with CaptureQueriesContext(connection) as one:
        operator_client.get(url)
    for _ in range(19):
        customer = CustomerFactory(owner=StaffMemberFactory())
        IdentityFactory(customer=customer, provider="phone")
    with CaptureQueriesContext(connection) as twenty:
        page = operator_client.get(url)
    assert page.content.decode().count("****") >= 19
    # The owner filter lists one more staff member per customer; no query per row.
    assert len(twenty) == len(one)


def test_merge_action(admin_client_en) -> None:
    first, second = CustomerFactory(), CustomerFactory()
    OrderFactory(customer=second)
    response = admin_client_en.post(
        reverse("admin:crm_customer_changelist"),
        {"action": "merge_customers", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert list(Customer.objects.values_list("pk", flat=True)) == [first.pk]
    assert first.orders.count() == 1
    assert CustomerMerge.objects.get().merged_customer_id == second.pk


def test_mark_for_recomputation_action(admin_client_en, customer) -> None:
    admin_client_en.post(
        reverse("admin:crm_customer_changelist"),
        {"action": "mark_for_recomputation", "_selected_action": [customer.pk]},
    )
    assert dirty_customer_ids() == {customer.pk}


def test_adding_a_tag_of_an_exclusive_group_in_the_customer_form_replaces(
    admin_client_en,
) -> None:
    group = TagGroupFactory(is_exclusive=True)
    high, low = TagFactory(group=group, name="高"), TagFactory(group=group, name="低")
    customer = CustomerFactory(display_name="甲")
    CustomerTagFactory(customer=customer, tag=high)
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    page = admin_client_en.get(url)
    form = page.context["adminform"].form
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    data.update(
        {
            "customer_tags-TOTAL_FORMS": "2",
            "customer_tags-INITIAL_FORMS": "1",
            "customer_tags-0-id": CustomerTag.objects.get().pk,
            "customer_tags-0-customer": customer.pk,
            "customer_tags-0-tag": high.pk,
            "customer_tags-1-customer": customer.pk,
            "customer_tags-1-tag": low.pk,
        }
    )
    for inline in page.context["inline_admin_formsets"]:  # every other inline: unchanged
        prefix = inline.formset.prefix
        if prefix != "customer_tags":
            data[f"{prefix}-TOTAL_FORMS"] = "0"
            data[f"{prefix}-INITIAL_FORMS"] = "0"
    response = admin_client_en.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert list(CustomerTag.objects.values_list("tag__name", flat=True)) == ["低"]


def test_api_key_add_shows_the_key_once_and_keeps_only_its_hash(admin_client_en) -> None:
    response = admin_client_en.post(
        reverse("admin:core_apikey_add"),
        {"name": "有赞", "scope_choices": ["orders:write", "customers:read"]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    raw_key = shown[0].rsplit(" ", 1)[1]
    api_key = ApiKey.objects.get()
    assert api_key_authenticate(raw_key) == api_key
    assert raw_key.split(".", 1)[1] not in api_key.secret_hash
    assert sorted(api_key.scopes) == ["customers:read", "orders:write"]
    page = admin_client_en.get(reverse("admin:core_apikey_change", args=[api_key.pk]))
    assert raw_key not in page.content.decode()
    assert api_key.secret_hash not in page.content.decode()


def test_revoke_action(admin_client_en) -> None:
    api_key, raw_key = api_key_create(name="shop", scopes=["orders"])
    admin_client_en.post(
        reverse("admin:core_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert api_key_authenticate(raw_key) is None


def test_admin_speaks_chinese_by_default_and_english_on_request(admin_user) -> None:
    chinese = Client()
    chinese.force_login(admin_user)
    page = chinese.get(reverse("admin:crm_customer_changelist")).content.decode()
    assert "私域 CRM" in page
    assert "客户" in page
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(admin_user)
    page = english.get(reverse("admin:crm_customer_changelist")).content.decode()
    assert "Private-domain CRM" in page


def test_deleting_a_customer_deletes_what_it_owns(admin_client_en, customer) -> None:
    response = admin_client_en.post(
        reverse("admin:crm_customer_delete", args=[customer.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Customer.objects.exists()
    assert not OrderItem.objects.exists()
    assert not customer.orders.exists()


def test_source_versions_are_shown_but_never_edited(admin_client_en) -> None:
    """The versions belong to the source systems: the change forms show them read-only."""
    customer = CustomerFactory()
    group = GroupFactory()
    for url, name in (
        (reverse("admin:crm_customer_change", args=[customer.pk]), "profile_source_updated_at"),
        (reverse("admin:crm_group_change", args=[group.pk]), "members_observed_at"),
    ):
        page = admin_client_en.get(url)
        assert page.status_code == 200
        form = page.context["adminform"].form
        assert name not in form.fields
        assert name in page.context["adminform"].readonly_fields


@pytest.mark.parametrize(
    "term", ["+86" + PHONE, "86" + PHONE, "+86 139 1234 5678", "86-139-1234-5678"]
)
def test_search_finds_a_phone_in_any_usual_form(operator_client, customer, term) -> None:
    CustomerFactory(display_name="别人")
    page = operator_client.get(reverse("admin:crm_customer_changelist"), {"q": term})
    content = page.content.decode()
    assert page.status_code == 200
    assert "王小美" in content
    assert "别人" not in content


def test_the_customer_form_refuses_a_birthday_out_of_range(admin_client_en, customer) -> None:
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    form = admin_client_en.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    form_class = type(form)
    bad = form_class(data={**data, "birthday": "0001-01-01"}, instance=customer)
    assert bad.errors["birthday"] == ["Must lie between 1900-01-01 and today."]
    good = form_class(data={**data, "birthday": "1990-05-01"}, instance=customer)
    assert "birthday" not in good.errors
    customer.refresh_from_db()
    assert customer.birthday is None
