"""The sync records and a customer's WeCom relations in the admin, and the ways a sync is
started: `manage.py wecom_sync` and the nightly task."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from core.actors import actor_label
from core.locks import Lock, session_lock
from crm.models import ContactWay, Customer, WeComSyncRun, WeComSyncStatus
from crm.tasks import wecom_sync_task
from devstack.wecom_directory import Directory
from devstack.wecom_fake import FakeWeCom
from tests.crm.wecom.contacts_support import T0, add_contact, deliver
from tests.support import on_own_connection

pytestmark = pytest.mark.django_db(transaction=True)

EXT = "wmEXTERNAL0000000000000000000001"


def test_the_customer_page_lists_relations_with_how_and_whether_they_last(
    fake: FakeWeCom, admin_client_en: Client
) -> None:
    ContactWay.objects.create(name="抖音直播间 12·12", state="douyin-v1")
    add_contact(fake.directory, EXT, "staff001", state="douyin-v1")
    add_contact(fake.directory, EXT, "staff002", createtime=T0 + 10)
    deliver("add_external_contact", T0 + 20, UserID="staff002", ExternalUserID=EXT)
    deliver("del_follow_user", T0 + 30, UserID="staff002", ExternalUserID=EXT)
    customer = Customer.objects.get()

    page = admin_client_en.get(reverse("admin:crm_customer_change", args=[customer.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "WeCom relations" in html
    assert html.count("Scanned a QR code") == 2
    assert "抖音直播间 12·12 (douyin-v1)" in html  # the code that brought them, by name
    assert "Connected" in html and "Relation deleted" in html
    assert "Customer deleted the staff member" in html


def test_sync_records_show_progress_and_changes_in_words(admin_client_en: Client) -> None:
    WeComSyncRun.objects.create(
        scopes=["contacts"],
        trigger="schedule",
        status=WeComSyncStatus.FAILED,
        items_done=1500,
        items_total=20000,
        changes={"contacts_created": 3, "follows_ended": 2, "someone_elses_kind": 4},
        error="WeChatClientException: 45009",
    )

    page = admin_client_en.get(reverse("admin:crm_wecomsyncrun_changelist"))

    html = page.content.decode()
    assert page.status_code == 200
    assert "1,500 of 20,000" in html
    assert "customers added: 3" in html
    assert "relations ended: 2" in html
    assert "other changes: 4" in html
    assert "WeCom refused the request (error 45009)." in html
    assert "Scheduled task" in html
    assert "contacts_created" not in html


def test_the_command_syncs_and_prints_progress_and_changes(fake: FakeWeCom) -> None:
    fake.directory = Directory.generate(staff=3, contacts=120, chats=0, tags=10)
    relations = len(fake.directory.follows)
    out = StringIO()

    call_command("wecom_sync", "--contacts", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"Sync finished: {relations} items read of {relations} expected."
    assert "customers added: 120" in lines
    assert f"relations added: {relations}" in lines
    out = StringIO()
    call_command("wecom_sync", "--contacts", stdout=out)
    assert out.getvalue().splitlines()[-1] == "Nothing changed."
    assert WeComSyncRun.objects.filter(trigger="command").count() == 2


def test_the_nightly_task_waits_for_wecom_to_be_configured() -> None:
    with override_settings(WECOM_CORP_ID="", WECOM_SECRET=""):
        assert wecom_sync_task() is None
    assert not WeComSyncRun.objects.exists()


def test_the_nightly_task_runs_a_sync(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")

    run_id = wecom_sync_task(scopes=["contacts"])

    run = WeComSyncRun.objects.get(pk=run_id)
    assert (run.trigger, run.status) == ("schedule", WeComSyncStatus.FINISHED)
    assert run.changes == {"contacts_created": 1, "follows_opened": 1}


@pytest.mark.django_db(transaction=True)
def test_a_second_sync_leaves_the_one_being_walked_alone(fake: FakeWeCom) -> None:
    """The command while the nightly task walks a run: nothing walked or counted twice."""
    running = WeComSyncRun.objects.create(scopes=["contacts"], trigger="schedule")
    held, release = threading.Event(), threading.Event()

    def nightly_task() -> None:
        with session_lock(Lock.WECOM_SYNC) as obtained:
            assert obtained
            held.set()
            release.wait(20)

    thread = threading.Thread(target=on_own_connection(nightly_task))
    thread.start()
    try:
        assert held.wait(20)
        out = StringIO()
        call_command("wecom_sync", stdout=out)
    finally:
        release.set()
        thread.join()
    assert actor_label("schedule") in out.getvalue()  # who is walking it
    running.refresh_from_db()
    assert (running.status, running.items_done, running.changes) == ("running", 0, {})
    assert WeComSyncRun.objects.count() == 1
    assert not fake.calls()
