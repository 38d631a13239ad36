"""The ledger's list costs the same queries whatever its length."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import CampaignFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def queries_of_the_deliveries_list(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:campaigns_delivery_changelist"))
    assert page.status_code == 200
    return len(queries)


def test_the_deliveries_list_reads_no_row_by_row(admin_client_en: Client) -> None:
    campaign = CampaignFactory()
    first = DeliveryFactory(campaign=campaign)
    one = queries_of_the_deliveries_list(admin_client_en)
    DeliveryFactory.create_batch(5, campaign=campaign)

    assert queries_of_the_deliveries_list(admin_client_en) == one
    page = admin_client_en.get(reverse("admin:campaigns_delivery_changelist")).content.decode()
    assert reverse("admin:crm_customer_change", args=[first.customer_id]) in page
