"""The admin's customer page: the CRM's page with segmentation's and campaigns' sections,
registered once by console whatever the order of INSTALLED_APPS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import console.admin
from campaigns.admin.customers import recent_deliveries
from console import customer_sections
from console.admin import CustomerPageAdmin
from core.errors import ValidationFailed
from crm.admin import CustomerAdmin
from crm.models import Customer, CustomerTag
from segments.admin import (
    CustomerMetricsInline,
    CustomerPredictionInline,
    CustomerSegmentInline,
    LifecycleTransitionInline,
)
from segments.models import SegmentMembership
from segments.services.segments import segment_create
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    SegmentFactory,
    TagFactory,
    UserFactory,
)
from tests.support import subprocess_database_url

PRODUCT_APPS = ["core", "crm", "segments", "campaigns", "console", "devstack"]

# A fresh process, its apps installed top layer first, lists what the registered customer
# page is and renders it.
REORDERED_PAGE = """
import json, sys
import django
from django.conf import settings

product = json.loads(sys.argv[1])
others = [name for name in settings.INSTALLED_APPS if name not in product]
settings.INSTALLED_APPS = [*others, *reversed(product)]
django.setup()

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse

from crm.models import Customer

setup_test_environment()
page_admin = admin.site.get_model_admin(Customer)
client = Client(HTTP_ACCEPT_LANGUAGE="en")
client.force_login(User.objects.get(username="boss"))
page = client.get(reverse("admin:crm_customer_change", args=[int(sys.argv[2])]))
print(json.dumps({
    "apps": [config.name for config in apps.get_app_configs() if config.name in product],
    "admin": f"{type(page_admin).__module__}.{type(page_admin).__qualname__}",
    "inlines": [f"{inline.__module__}.{inline.__qualname__}" for inline in page_admin.inlines],
    "readonly_fields": list(page_admin.readonly_fields),
    "status": page.status_code,
    "page": page.content.decode(),
}))
"""


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_customer_page_is_console_s_with_every_app_s_sections() -> None:
    page_admin = admin.site.get_model_admin(Customer)
    assert type(page_admin) is CustomerPageAdmin
    assert issubclass(CustomerPageAdmin, CustomerAdmin)
    assert CustomerPageAdmin.inlines == [
        CustomerMetricsInline,
        CustomerPredictionInline,
        LifecycleTransitionInline,
        CustomerSegmentInline,
        *CustomerAdmin.inlines,
    ]
    assert CustomerPageAdmin.readonly_fields == [
        *CustomerAdmin.readonly_fields,
        "recent_interactions",
        "campaign_history",
        "recent_deliveries",
    ]
    assert CustomerPageAdmin.recent_deliveries is recent_deliveries
    assert CustomerPageAdmin.recent_interactions is customer_sections.recent_interactions
    assert CustomerPageAdmin.campaign_history is customer_sections.campaign_history


@pytest.mark.django_db(transaction=True)
def test_the_customer_page_is_the_same_with_the_apps_installed_in_reverse_order() -> None:
    customer = CustomerFactory()
    UserFactory(username="boss", is_superuser=True)
    ran = subprocess.run(
        [sys.executable, "-c", REORDERED_PAGE, json.dumps(PRODUCT_APPS), str(customer.pk)],
        env={
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
        cwd=Path(settings.BASE_DIR),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout.strip().splitlines()[-1])
    assert shown["apps"] == list(reversed(PRODUCT_APPS))
    assert shown["admin"] == _dotted(CustomerPageAdmin)
    assert shown["inlines"] == [_dotted(inline) for inline in CustomerPageAdmin.inlines]
    assert shown["readonly_fields"] == CustomerPageAdmin.readonly_fields
    assert shown["status"] == 200
    for section in (
        "Scores and lifecycle",
        "Predictions",
        "Lifecycle transitions",
        "Segments",
        "Identities",
        "Interactions: the latest 20",
        "Campaign history: the latest 50",
        "Contact pressure: deliveries of the last 30 days",
    ):
        assert section in shown["page"]


@pytest.mark.django_db
def test_the_customer_list_shows_and_filters_lifecycle_and_tier(admin_client_en) -> None:
    sleeping = CustomerMetricsFactory(
        lifecycle_state="sleeping", rfm_tier="important_winback"
    ).customer
    CustomerMetricsFactory(lifecycle_state="active", rfm_tier="important_value")
    CustomerFactory()  # never recomputed: no metrics row
    url = reverse("admin:crm_customer_changelist")

    with CaptureQueriesContext(connection) as whole:
        page = admin_client_en.get(url)
    assert page.status_code == 200
    rows = page.context["cl"].result_list
    assert [
        (CustomerPageAdmin.lifecycle_state(None, c), CustomerPageAdmin.rfm_tier(None, c))
        for c in rows
    ] == [("-", "-"), ("Active", "Important value"), ("Sleeping", "Important win-back")]
    assert "Lifecycle state" in page.content.decode()

    filtered = admin_client_en.get(url, {"metrics__lifecycle_state__exact": "sleeping"})
    assert [c.pk for c in filtered.context["cl"].result_list] == [sleeping.pk]
    by_tier = admin_client_en.get(url, {"metrics__rfm_tier__exact": "important_value"})
    assert [c.metrics.lifecycle_state for c in by_tier.context["cl"].result_list] == ["active"]

    CustomerMetricsFactory.create_batch(5, lifecycle_state="new")
    with CaptureQueriesContext(connection) as longer:
        admin_client_en.get(url)
    assert len(longer) == len(whole)  # the columns cost no query per row


def _act(client, action: str, customers: list[Customer], **choice: object):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [c.pk for c in customers]}
    if choice:
        data |= {"apply": "1", **choice}
    return client.post(reverse("admin:crm_customer_changelist"), data, follow=bool(choice))


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
def test_the_selected_customers_are_tagged_and_untagged_after_one_choice(admin_client_en) -> None:
    first, second, other = CustomerFactory.create_batch(3)
    tag = TagFactory(name="VIP")

    asked = _act(admin_client_en, "tag_customers", [first, second])
    assert asked.status_code == 200
    assert asked.context["count"] == 2
    assert not CustomerTag.objects.exists()  # nothing happens before the choice

    done = _act(admin_client_en, "tag_customers", [first, second], tag=tag.pk)
    assert set(CustomerTag.objects.values_list("customer_id", "tag_id")) == {
        (first.pk, tag.pk),
        (second.pk, tag.pk),
    }
    assert _messages(done) == [f"2 customers tagged {tag}."]

    done = _act(admin_client_en, "untag_customers", [second, other], tag=tag.pk)
    assert list(CustomerTag.objects.values_list("customer_id", flat=True)) == [first.pk]
    assert _messages(done) == [f"Tag {tag} removed from 1 customer."]


@pytest.mark.django_db
def test_the_selected_customers_join_a_static_segment_only(admin_client_en) -> None:
    customers = CustomerFactory.create_batch(2)
    static = segment_create(name="名单", kind="static", actor="t")
    dynamic = SegmentFactory(name="规则人群")

    refused = _act(admin_client_en, "add_to_segment", customers, segment=dynamic.pk)
    assert refused.context["form"].errors["segment"]  # not among the choices
    assert not SegmentMembership.objects.exists()

    done = _act(admin_client_en, "add_to_segment", customers, segment=static.pk)
    assert set(SegmentMembership.objects.values_list("customer_id", flat=True)) == {
        c.pk for c in customers
    }
    assert _messages(done) == ["2 customers added to 名单, which now has 2."]


@pytest.mark.django_db
def test_a_refused_bulk_action_says_why_and_changes_nothing(admin_client_en, monkeypatch) -> None:
    customer = CustomerFactory()
    tag = TagFactory()

    def refuse(**kwargs: object) -> None:
        raise ValidationFailed("refused", "The service said no.")

    monkeypatch.setattr(console.admin, "tags_assign", refuse)
    done = _act(admin_client_en, "tag_customers", [customer], tag=tag.pk)
    assert _messages(done) == ["The service said no."]
    assert not CustomerTag.objects.exists()


@pytest.mark.django_db
def test_a_bulk_action_over_too_many_customers_is_refused(admin_client_en, monkeypatch) -> None:
    customers = CustomerFactory.create_batch(3)
    monkeypatch.setattr(console.admin, "BULK_ACTION_LIMIT", 2)
    response = admin_client_en.post(
        reverse("admin:crm_customer_changelist"),
        {"action": "tag_customers", helpers.ACTION_CHECKBOX_NAME: [c.pk for c in customers]},
        follow=True,
    )
    assert _messages(response) == ["Select at most 2 customers, or use a segment for more."]
