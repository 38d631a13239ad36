"""Consent reads: the one definition of who opted out of a channel, which campaigns' planning,
reservation and send-time check embed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import ConsentChannel, ConsentStatus
from crm.selectors.consents import opted_out_sql
from crm.services.consents import consent_record
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _decide(customer_id: int, channel: str, status: str, minutes_ago: int = 0) -> None:
    consent_record(
        customer_id=customer_id,
        channel=channel,
        status=status,
        source="test",
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
        actor="test",
    )


def test_only_customers_whose_latest_decision_on_the_channel_is_opted_out() -> None:
    opted_out, opted_back_in, opted_in, undecided, elsewhere = CustomerFactory.create_batch(5)
    _decide(opted_out.pk, ConsentChannel.WECOM, ConsentStatus.OPTED_OUT)
    _decide(opted_back_in.pk, ConsentChannel.WECOM, ConsentStatus.OPTED_OUT, minutes_ago=5)
    _decide(opted_back_in.pk, ConsentChannel.WECOM, ConsentStatus.OPTED_IN)
    _decide(opted_in.pk, ConsentChannel.WECOM, ConsentStatus.OPTED_IN)
    _decide(elsewhere.pk, ConsentChannel.SMS, ConsentStatus.OPTED_OUT)

    with connection.cursor() as cursor:
        cursor.execute(opted_out_sql(channel_param="ch"), {"ch": ConsentChannel.WECOM})
        assert cursor.fetchall() == [(opted_out.pk,)]
        cursor.execute(opted_out_sql(channel_param="ch"), {"ch": ConsentChannel.SMS})
        assert cursor.fetchall() == [(elsewhere.pk,)]
    assert undecided.consents.count() == 0
