"""The demo corp of `make run`'s WeCom fake, its live arrivals told to the product, and the
demo channel QR codes with their customers (the report's numbers)."""

import random
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from crm.models import (
    ContactWay,
    CustomerAcquisition,
    WeComEvent,
    WeComEventStatus,
    WeComFollow,
)
from crm.selectors.contact_ways import contact_way_reports
from crm.services.wecom_events import wecom_event_process
from devstack.demo_wecom import DEMO_WAYS, KIND_ADD, demo_directory, live_step
from devstack.wecom_callbacks import CallbackEmitter
from devstack.wecom_fake import FakeWeCom, FakeWeComConfig
from tests.campaigns.support import CORP_ID, WECOM_SECRET
from tests.crm.wecom.callback_support import AES_KEY, CALLBACK_SETTINGS, TOKEN


def test_the_demo_corp_is_the_demo_guides_with_the_demo_codes() -> None:
    directory = demo_directory(qr_code_url=lambda config_id: f"http://fake/{config_id}.png")
    assert sorted(directory.staff) == [f"demo_guide_{n:02d}" for n in range(1, 7)]
    assert len(directory.contacts) == 300 and len(directory.chats) == 6
    assert len(directory.tags) == 24 and len(directory.tag_groups) == 4
    assert {f.userid for f in directory.follows.values()} <= set(directory.staff)
    assert {c.owner for c in directory.chats.values()} <= set(directory.staff)
    for way in DEMO_WAYS:
        config = directory.contact_ways[way.config_id]
        assert config.state == way.state and config.user == list(way.userids)
        assert config.qr_code == f"http://fake/{way.config_id}.png"
    assert demo_directory() == demo_directory()  # the same corp at every start


def test_the_fake_serves_the_demo_corp_with_its_codes_images() -> None:
    from devstack.demo_wecom import demo_install

    with FakeWeCom() as fake:
        demo_install(fake)
        way = DEMO_WAYS[0]
        assert fake.directory.contact_ways[way.config_id].qr_code == (
            f"{fake.base_url}/_fake/qr/{way.config_id}.png"
        )
        assert fake.handle_file(f"/_fake/qr/{way.config_id}.png") is not None


@pytest.mark.django_db(transaction=True)
def test_a_live_arrival_is_a_signed_callback_the_product_applies(live_server, settings) -> None:
    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    config = FakeWeComConfig(corps={CORP_ID: WECOM_SECRET}, cap_per_receiver=None)
    with FakeWeCom(config) as fake:
        settings.WECOM_API_BASE_URL = fake.api_base_url
        settings.WECOM_SECRET = WECOM_SECRET
        fake.directory = demo_directory()
        emitter = CallbackEmitter(
            f"{live_server.url}/wecom/callback", token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID
        )
        with mock.patch("core.enqueue.publish"):  # processed below, not by a worker
            sent = live_step(fake, emitter, random.Random(3), corp_id=CORP_ID)
        assert sent[0] == (KIND_ADD, 200)
        assert all(status == 200 for _, status in sent)
        event = WeComEvent.objects.get(change_type=KIND_ADD)
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.APPLIED
    follow = WeComFollow.objects.get()
    assert follow.state in {w.state for w in DEMO_WAYS}
    acquisition = CustomerAcquisition.objects.get()
    assert acquisition.state == follow.state and acquisition.contact_way is None  # no rows


def test_live_arrivals_go_on_while_the_product_is_down() -> None:
    with FakeWeCom() as fake:
        fake.directory = demo_directory()
        emitter = CallbackEmitter(
            "http://127.0.0.1:9/wecom/callback", token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID
        )
        before = len(fake.directory.contacts)
        sent = live_step(fake, emitter, random.Random(1), corp_id=CORP_ID)
        assert sent[0] == (KIND_ADD, 0)
        assert len(fake.directory.contacts) == before + 1


@pytest.mark.django_db
def test_the_demo_codes_bring_demo_customers_with_a_report(fake) -> None:
    from django.core.management import call_command

    from crm.wecom.sync import wecom_sync_run
    from devstack import demo

    now = timezone.now()
    demo.generate(
        customers=3000, seed=7, orders_per_customer=2.5, as_of=timezone.localdate(), progress=False
    )
    call_command("load_demo_contact_ways", if_empty=True)
    call_command("load_demo_contact_ways", if_empty=True)  # once only
    assert ContactWay.objects.count() == len(DEMO_WAYS)
    acquisitions = CustomerAcquisition.objects.count()
    assert acquisitions > 0
    assert WeComFollow.objects.filter(state__in=[w.state for w in DEMO_WAYS]).count() > 0
    ended = WeComFollow.objects.exclude(deleted_at=None).count()
    assert ended > 0
    # The demo corp's full sync (as `make run` starts it) leaves the codes' relations alone.
    fake.directory = demo_directory()
    wecom_sync_run(scopes=["contacts"], trigger="test")
    assert (
        WeComFollow.objects.filter(
            state__in=[w.state for w in DEMO_WAYS], deleted_at__isnull=False
        ).count()
        == ended
    )
    reports = contact_way_reports(now=now)
    total_added = sum(r.added for r in reports.values())
    assert total_added > 0 and sum(r.acquired for r in reports.values()) == acquisitions
    assert sum(r.first_orders_90 for r in reports.values()) > 0
    assert sum((r.first_order_revenue_90 for r in reports.values()), Decimal(0)) > 0
    assert any(r.kept_7_rate is not None for r in reports.values())
    week = contact_way_reports(added_since=now - timedelta(days=7), added_before=now, now=now)
    assert sum(r.added for r in week.values()) > 0
