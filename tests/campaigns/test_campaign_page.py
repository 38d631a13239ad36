"""The campaign's own page (issue 16 section 3): launch, pause, resume and cancel as buttons for
those who may, each behind a confirmation showing the dry run's funnel, the WeCom tasks per staff
member and the warnings worth reading; the state shown while deliveries still wait for the
platform, and its progress as JSON; each variant's message for an example customer."""

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from pytest_django.asserts import assertContains, assertNotContains

from campaigns.models import Campaign, CampaignState, Channel, DeliveryStatus
from campaigns.services.campaigns import VariantInput
from crm.models import Customer
from tests.campaigns.support import (
    audience,
    group_chat,
    make_campaign,
    opt_out,
    wecom_customers,
)
from tests.conftest import Enqueued
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    StaffMemberFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


def staff_client(*codenames: str) -> Client:
    """Staff holding the campaigns app's permissions named."""
    return client_of(
        UserFactory(
            permissions=seeing_every_customer(
                Permission.objects.filter(
                    content_type__app_label="campaigns", codename__in=codenames
                )
            )
        )
    )


@pytest.fixture
def viewer() -> Client:
    return staff_client("view_campaign")


@pytest.fixture
def launcher() -> Client:
    return staff_client("view_campaign", "launch_campaign")


def change_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def action_url(campaign: Campaign, action: str) -> str:
    return reverse(f"admin:campaigns_campaign_{action}", args=[campaign.pk])


def progress_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_progress", args=[campaign.pk])


def row(label: str, *cells: str) -> str:
    return f'<tr><th scope="row">{label}</th>{"".join(f"<td>{c}</td>" for c in cells)}</tr>'


def assert_once(page: str, fragment: str) -> None:
    """`fragment` (HTML) is in the page once, whitespace aside."""
    squeezed = "".join(page.split())
    assert squeezed.count("".join(fragment.split())) == 1, fragment


def confirmation(client: Client, campaign: Campaign) -> str:
    with time_machine.travel(T0, tick=False):
        page = client.get(action_url(campaign, "launch"))
    assert page.status_code == 200
    return page.content.decode()


# --- Buttons -----------------------------------------------------------------------------

BUTTONS_BY_STATE = {
    CampaignState.DRAFT: ["launch"],
    CampaignState.SCHEDULED: ["pause", "cancel"],
    CampaignState.SENDING: ["pause", "cancel"],
    CampaignState.PAUSED: ["resume", "cancel"],
    CampaignState.COMPLETED: [],
    CampaignState.CANCELLED: [],
}
ACTIONS = ["launch", "pause", "resume", "cancel"]


@pytest.mark.parametrize("state", list(BUTTONS_BY_STATE))
def test_the_buttons_are_those_of_the_campaigns_state(launcher: Client, state: str) -> None:
    campaign = CampaignFactory(state=state)

    page = launcher.get(change_url(campaign)).content.decode()

    shown = [action for action in ACTIONS if f'href="{action_url(campaign, action)}"' in page]
    assert shown == BUTTONS_BY_STATE[state]


def test_who_may_not_launch_sees_no_button_and_is_refused(viewer: Client) -> None:
    campaign = CampaignFactory(state=CampaignState.DRAFT)

    page = viewer.get(change_url(campaign)).content.decode()
    assert 'class="campaign-buttons"' not in page
    assert viewer.get(action_url(campaign, "launch")).status_code == 403
    assert viewer.post(action_url(campaign, "launch")).status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT
    assert campaign.launched_at is None


def test_the_buttons_show_in_chinese(launcher: Client) -> None:
    campaign = CampaignFactory(state=CampaignState.SENDING)

    page = launcher.get(change_url(campaign), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assertContains(page, f'href="{action_url(campaign, "pause")}">暂停</a>')
    assertContains(page, f'href="{action_url(campaign, "cancel")}">取消活动</a>')


# --- The launch confirmation ------------------------------------------------------------


def funnel_case(*, capped: int = 2) -> tuple[Campaign, list[Customer]]:
    """Seven in the audience: one opted out, one without a WeCom identity, `capped` sent to an
    hour ago (the platform preset allows one a day), the others to send."""
    reachable = wecom_customers(6, owner=StaffMemberFactory(name="林导购"))
    unreachable = CustomerFactory()
    opt_out(reachable[5], at=T0 - timedelta(days=1))
    earlier = make_campaign(audience(reachable[:capped], "earlier"), name="上周活动")
    for customer in reachable[:capped]:
        DeliveryFactory(campaign=earlier, customer=customer, at=T0 - timedelta(hours=1))
    campaign = make_campaign(audience([*reachable, unreachable], "all"), name="会员日")
    return campaign, reachable


def test_the_launch_confirmation_shows_the_dry_runs_funnel(launcher: Client) -> None:
    campaign, _reachable = funnel_case()
    preset = "企业微信平台群发限制"

    page = confirmation(launcher, campaign)

    for fragment in [
        row("Audience", "", "7"),
        row("Opted out", "1", "6"),
        row("No identity for the channel", "1", "5"),
        row(f"Capped by “{preset}”", "2", "3"),
        row("Holdout (control group)", "0", "3"),
    ]:
        assert_once(page, fragment)
    assert '<td class="campaign-to-send">3</td>' in page
    data = page.split('<script id="campaign-funnel-data" type="application/json">')[1]
    chart = json.loads(data.split("</script>")[0])
    assert chart["values"] == [7, 6, 5, 3, 3]
    assert chart["names"][-1] == "To send"
    assert "(Beijing time)" in page
    # One shared text: one task for the staff member who owns the three.
    assert_once(page, row("林导购", "3", "1"))
    assert "campaign-warnings" not in page  # nothing worth a warning
    assert "新品上市" in page  # the message, as an example customer reads it


def test_a_mostly_capped_audience_is_warned_of(launcher: Client) -> None:
    campaign, _reachable = funnel_case(capped=4)  # 4 of 7

    page = confirmation(launcher, campaign)

    assert (
        "Most of the audience is held back by frequency rules: 4 of 7 (57.14%), most by "
        "“企业微信平台群发限制”." in page
    )


def test_an_audience_mostly_in_another_campaigns_holdout_is_warned_of(launcher: Client) -> None:
    customers = wecom_customers(3)
    anniversary = CampaignFactory(name="周年庆", state=CampaignState.COMPLETED)
    for customer in customers[:2]:
        DeliveryFactory(
            campaign=anniversary,
            customer=customer,
            is_holdout=True,
            status=DeliveryStatus.HELD_OUT,
            at=T0 - timedelta(days=2),
        )
    campaign = make_campaign(audience(customers), name="复购提醒")

    page = confirmation(launcher, campaign)

    assert (
        "Most of those who would be sent are in the holdout (control group) of the campaign "
        "“周年庆”: 2 of 3 (66.67%)." in page
    )


def test_a_small_holdout_overlap_or_an_old_one_is_not_warned_of(launcher: Client) -> None:
    customers = wecom_customers(3)
    anniversary = CampaignFactory(name="周年庆", state=CampaignState.COMPLETED)
    DeliveryFactory(
        campaign=anniversary,
        customer=customers[0],
        is_holdout=True,
        status=DeliveryStatus.HELD_OUT,
        at=T0 - timedelta(days=2),
    )
    # Measured no more: its conversion window (7 days) closed long ago.
    old = CampaignFactory(name="去年活动", state=CampaignState.COMPLETED)
    for customer in customers:
        DeliveryFactory(
            campaign=old,
            customer=customer,
            is_holdout=True,
            status=DeliveryStatus.HELD_OUT,
            at=T0 - timedelta(days=30),
        )
    campaign = make_campaign(audience(customers), name="复购提醒")

    page = confirmation(launcher, campaign)

    assert "holdout (control group) of the campaign" not in page


def test_launching_within_the_quiet_hours_is_warned_of_with_when_the_sends_start(
    launcher: Client,
) -> None:
    customers = wecom_customers(3)
    campaign = make_campaign(
        audience(customers),
        name="早安问候",
        quiet_hours_start=time(9, 0),  # T0 is 10:00
        quiet_hours_end=time(11, 0),
    )

    page = confirmation(launcher, campaign)

    warnings = page.split('<ul class="messagelist campaign-warnings">')[1].split("</ul>")[0]
    expected = (
        "Now is within the campaign's quiet hours (09:00–11:00, Beijing time): launched now, "
        "its sends would wait until March 2, 2026, 11 a.m. (Beijing time)."
    )
    assert escape(expected) in warnings


def test_launching_outside_the_quiet_hours_is_not_warned_of(launcher: Client) -> None:
    customers = wecom_customers(3)
    campaign = make_campaign(
        audience(customers),
        name="晚安问候",
        quiet_hours_start=time(21, 0),  # T0 is 10:00
        quiet_hours_end=time(9, 0),
    )

    page = confirmation(launcher, campaign)

    assert "quiet hours" not in page
    assert "campaign-warnings" not in page


def test_the_quiet_hours_warning_is_in_chinese(launcher: Client) -> None:
    campaign = make_campaign(
        audience(wecom_customers(1)), quiet_hours_start=time(9, 0), quiet_hours_end=time(11, 0)
    )

    with time_machine.travel(T0, tick=False):
        page = launcher.get(action_url(campaign, "launch"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assertContains(
        page,
        "现在处于该活动的免打扰时段（09:00–11:00，北京时间）：现在启动的话，消息将等到 "
        "2026年3月2日 11:00（北京时间） 再发送。",
    )


def test_a_personalised_wecom_text_is_warned_of_with_its_tasks_per_staff_member(
    launcher: Client,
) -> None:
    lin, zhou = StaffMemberFactory(name="林导购"), StaffMemberFactory(name="周导购")
    customers = [*wecom_customers(2, owner=lin), *wecom_customers(1, owner=zhou)]
    for number, customer in enumerate(customers):
        Customer.objects.filter(pk=customer.pk).update(display_name=f"客户{number}")
    campaign = make_campaign(
        audience(customers),
        name="春季上新",
        variants=[VariantInput(name="A", content="{{ display_name }}，春季新品上市")],
    )

    page = confirmation(launcher, campaign)

    assert (
        "The message names {{ display_name }}, so WeCom needs a task of its own for each "
        "customer: 2 staff members would each confirm their tasks one by one, 3 tasks in all. "
        "With one shared text (no customer variable) it would be 2." in page
    )
    assert f'href="{change_url(campaign)}#variants-group"' in page
    assert_once(page, row("林导购", "2", "2", "1"))
    assert_once(page, row("周导购", "1", "1", "1"))
    assert "Wang Xiaomei (example)，春季新品上市" in page  # never a real customer's name
    assert "客户0" not in page


def test_a_shared_wecom_text_is_not_warned_of(launcher: Client) -> None:
    customers = wecom_customers(3)
    campaign = make_campaign(audience(customers), name="春季上新")

    page = confirmation(launcher, campaign)

    assert "WeCom needs a task of its own" not in page
    assert "With a shared text" not in page


def test_a_group_chat_campaign_counts_one_task_per_chat_owner(launcher: Client) -> None:
    owner = StaffMemberFactory(name="群主小林")
    members = CustomerFactory.create_batch(4)
    group_chat(owner, members[:2])
    group_chat(owner, members[2:])
    campaign = make_campaign(audience(members), name="社群上新", channel=Channel.WECOM_GROUP)

    page = confirmation(launcher, campaign)

    assert '<td class="campaign-to-send">4</td>' in page
    assert_once(page, row("群主小林", "4", "1"))  # two chats of one owner: one task


def test_the_launch_confirmation_costs_the_same_queries_whatever_the_audience(
    launcher: Client,
) -> None:
    small = make_campaign(audience(wecom_customers(2), "small"), name="small")
    large = make_campaign(audience(wecom_customers(20), "large"), name="large")

    def queries(campaign: Campaign) -> int:
        with CaptureQueriesContext(connection) as captured:
            confirmation(launcher, campaign)
        return len(captured)

    assert queries(small) == queries(large)


def test_confirming_launches_and_comes_back_to_the_campaign(
    launcher: Client, enqueued: list[Enqueued], django_capture_on_commit_callbacks: object
) -> None:
    campaign, _reachable = funnel_case()

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = launcher.post(action_url(campaign, "launch"))

    assert response.status_code == 302
    assert response["Location"] == change_url(campaign)
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.SENDING
    assert [task.name for task in enqueued] == ["campaigns.plan"]
    page = launcher.get(change_url(campaign)).content.decode()
    assert "1 campaign launched." in page
    assert f'data-progress-url="{progress_url(campaign)}"' in page


def test_a_change_no_longer_open_is_refused_and_changes_nothing(launcher: Client) -> None:
    campaign = CampaignFactory(state=CampaignState.COMPLETED)

    response = launcher.post(action_url(campaign, "cancel"))

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.COMPLETED
    assert campaign.finished_at is None
    page = launcher.get(change_url(campaign)).content.decode()
    assert "This campaign is Completed: it cannot be changed this way now." in page


def test_pausing_confirms_with_the_campaigns_progress(launcher: Client) -> None:
    campaign = CampaignFactory(state=CampaignState.SENDING, planned_at=T0)
    DeliveryFactory.create_batch(2, campaign=campaign, status=DeliveryStatus.PENDING)

    page = launcher.get(action_url(campaign, "pause")).content.decode()

    assert "Pause this campaign?" in page
    assert "campaign-funnel" not in page
    assert_once(page, '<dd data-progress="text.waiting">2</dd>')
    response = launcher.post(action_url(campaign, "pause"))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.PAUSED


# --- Progress ------------------------------------------------------------------------------


def waiting_for_staff() -> Campaign:
    """Completed by the tick, yet three WeCom tasks' results are still to come."""
    campaign = CampaignFactory(state=CampaignState.COMPLETED, planned_at=T0, finished_at=T0)
    for status, count in [
        (DeliveryStatus.SENT, 2),
        (DeliveryStatus.SUBMITTED, 3),
        (DeliveryStatus.FAILED, 1),
        (DeliveryStatus.DEAD_LETTER, 1),
        (DeliveryStatus.HELD_OUT, 4),
        (DeliveryStatus.SUPPRESSED, 5),
    ]:
        DeliveryFactory.create_batch(count, campaign=campaign, status=status)
    return campaign


def test_the_progress_counts_sent_waiting_and_failed(viewer: Client) -> None:
    campaign = waiting_for_staff()

    response = viewer.get(progress_url(campaign))

    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "awaiting_staff"
    assert data["state_label"] == "Waiting for staff to confirm"
    assert data["is_live"] is True
    assert (data["sent"], data["waiting"], data["awaiting_platform"], data["failed"]) == (
        2,
        3,
        3,
        2,
    )
    assert data["to_send"] == 7
    assert data["done_percent"] == 57
    assert data["text"]["done"] == "57.14%"


def test_a_campaign_waiting_for_staff_is_not_shown_completed(viewer: Client) -> None:
    campaign = waiting_for_staff()

    page = viewer.get(change_url(campaign))
    assertContains(page, "Waiting for staff to confirm")
    listing = viewer.get(reverse("admin:campaigns_campaign_changelist"))
    assertContains(listing, "Waiting for staff to confirm")

    campaign.deliveries.filter(status=DeliveryStatus.SUBMITTED).update(status=DeliveryStatus.SENT)
    data = viewer.get(progress_url(campaign)).json()
    shown = (data["state"], data["state_label"], data["is_live"])
    assert shown == ("completed", "Completed", False)
    assert (data["sent"], data["waiting"], data["failed"]) == (5, 0, 2)


def test_a_sending_campaign_still_to_plan_or_queueing_shows_sending(viewer: Client) -> None:
    planning = CampaignFactory(state=CampaignState.SENDING, channel=Channel.WEBHOOK)
    assert viewer.get(progress_url(planning)).json()["state"] == "sending"
    queueing = CampaignFactory(state=CampaignState.SENDING, planned_at=T0)
    DeliveryFactory(campaign=queueing, status=DeliveryStatus.RESERVED)
    DeliveryFactory(campaign=queueing, status=DeliveryStatus.SUBMITTED)
    data = viewer.get(progress_url(queueing)).json()
    assert (data["state"], data["waiting"], data["awaiting_platform"]) == ("sending", 2, 1)


def test_the_progress_needs_the_view_permission(client: Client) -> None:
    campaign = waiting_for_staff()

    refused = staff_client("view_frequencyrule").get(progress_url(campaign))
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    anonymous = client.get(progress_url(campaign))
    assert anonymous.status_code == 302  # to the login page
    assert "login" in anonymous["Location"]
    for unknown in ("0", "abc", "1%2F2"):
        url = progress_url(campaign).replace(f"/{campaign.pk}/", f"/{unknown}/")
        missing = staff_client("view_campaign").get(url)
        assert missing.status_code == 404, unknown
        assert missing.json()["code"] == "campaign_not_found"


def test_the_progress_costs_the_same_queries_whatever_the_deliveries(viewer: Client) -> None:
    small = CampaignFactory(state=CampaignState.SENDING, planned_at=T0)
    DeliveryFactory(campaign=small, status=DeliveryStatus.SENT)
    large = waiting_for_staff()

    def queries(campaign: Campaign) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(progress_url(campaign)).status_code == 200
        return len(captured)

    # The session, its user, their permissions (two), the campaign, its deliveries counted.
    assert queries(small) == queries(large) <= 6


# --- The report ---------------------------------------------------------------------------


def test_the_report_shows_each_variants_message_and_its_times(viewer: Client) -> None:
    campaign = make_campaign(
        audience(wecom_customers(1)),
        name="春季上新",
        variants=[
            VariantInput(name="A", content="{{ display_name }}，春季新品上市"),
            VariantInput(name="B", content="{{ owner_name }}为您挑选了{{ city }}门店的新品"),
        ],
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        state=CampaignState.COMPLETED, launched_at=T0, planned_at=T0, finished_at=T0
    )

    page = viewer.get(reverse("admin:campaigns_campaign_report", args=[campaign.pk]))

    content = page.content.decode()
    assert_once(content, row("A", "Wang Xiaomei (example)，春季新品上市"))
    assert_once(content, row("B", "Li Na (example staff member)为您挑选了Hangzhou门店的新品"))
    assert "made-up values, not a real customer" in content
    assert "Launched March 2, 2026, 10 a.m. (Beijing time)." in content
    assert "Finished March 2, 2026, 10 a.m. (Beijing time)." in content
    assertNotContains(page, "{{ display_name }}")
