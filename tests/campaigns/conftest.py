"""Fixtures of the campaign tests."""

import pytest

from segments.models import Segment
from tests.campaigns.support import audience, wecom_customers
from tests.factories import CustomerFactory


@pytest.fixture
def segment() -> Segment:
    """老客: three customers reachable on WeCom, in a static segment."""
    return audience(wecom_customers(3), name="老客")


@pytest.fixture
def webhook_audience() -> Segment:
    """回调人群: one customer, whom a webhook campaign reaches without an identity."""
    return audience([CustomerFactory()], name="回调人群")
