"""The demo brand's segments: created once, materialised from a recomputation of demo data,
three of them pinned so that the overview's 钉选人群 panel draws their size from the start."""

from datetime import date
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from devstack import demo
from segments.models import Segment, SegmentMembership
from tests.factories import UserFactory
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db


def test_demo_segments_have_members_and_load_once() -> None:
    as_of = date(2026, 6, 30)
    demo.generate(customers=400, seed=3, orders_per_customer=4, as_of=as_of, progress=False)
    call_command("recompute", "--as-of", as_of.isoformat(), "--no-progress", stdout=StringIO())
    out = StringIO()
    call_command("load_demo_segments", "--if-empty", stdout=out)
    sizes = dict(Segment.objects.values_list("name", "member_count"))
    assert set(sizes) == {
        "重要价值客户",
        "沉睡高消费客户",
        "近 30 天新客",
        "护肤复购客户",
        "高流失风险复购客户",
    }
    assert sizes["高流失风险复购客户"] == 0  # no churn model fitted yet
    assert sizes["重要价值客户"] > 0
    assert sizes["沉睡高消费客户"] > 0
    assert sum(sizes.values()) == SegmentMembership.objects.count()
    call_command("load_demo_segments", "--if-empty", stdout=out)
    assert Segment.objects.count() == 5
    assert "not loaded" in out.getvalue()


def test_the_overview_draws_the_pinned_demo_segments_from_their_first_refresh() -> None:
    as_of = date(2026, 6, 30)
    demo.generate(customers=400, seed=3, orders_per_customer=4, as_of=as_of, progress=False)
    call_command("recompute", "--as-of", as_of.isoformat(), "--no-progress", stdout=StringIO())
    call_command("load_demo_segments", "--if-empty", stdout=StringIO())
    pinned = dict(Segment.objects.filter(pinned=True).values_list("name", "member_count"))
    assert set(pinned) == {"沉睡高消费客户", "近 30 天新客", "重要价值客户"}

    viewer = UserFactory(
        permissions=seeing_every_customer(Permission.objects.filter(codename="view_segment"))
    )
    panel = client_of(viewer).get("/admin/").context["overview"]["pinned"]
    lines = {line["name"]: line["sizes"] for line in panel["chart"]["lines"]}
    assert set(lines) == set(pinned)
    for name, sizes in lines.items():
        # Today's point, the size of the first refresh; no history made up before it.
        assert sizes[-1] == pinned[name]
        assert set(sizes[:-1]) == {None}
