"""Campaign admin: drafts created and changed through the services (variants inline), the
service's reasons shown on the form, read-only once launched, state changes as actions behind
a confirmation page, the dry run and report pages, the read-only ledger, and a customer's
recent deliveries on the customer page."""

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from campaigns.models import (
    Campaign,
    CampaignState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
    FrequencyRule,
)
from campaigns.services.attribution import conversions_attribute
from campaigns.services.campaigns import (
    VariantInput,
    campaign_launch,
    campaign_plan,
)
from campaigns.services.frequency_rules import frequency_rule_create
from crm.models import Customer
from segments.models import Segment
from tests.campaigns.support import (
    audience,
    campaign_add_posted,
    make_campaign,
    opt_out,
    report_case,
    statuses,
    wecom_customers,
)
from tests.factories import (
    CampaignFactory,
    ChannelSendFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of, form_data, json_script_data

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:campaigns_campaign_changelist"


def launched(segment: Segment, **overrides: Any) -> Campaign:
    """A sending campaign with its deliveries planned."""
    campaign = make_campaign(segment, **overrides)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return campaign


def counts_shown(campaign: Campaign) -> str:
    """The delivery counts as the campaign pages show them."""
    counts = statuses(campaign)
    return ", ".join(f"{s.label}: {counts[s]}" for s in DeliveryStatus if s in counts)


def test_pages_render(admin_client_en: Client, segment: Segment) -> None:
    draft = make_campaign(segment, name="草稿活动")
    sending = launched(segment, name="进行中活动")
    assert sum(statuses(sending).values()) == 3
    page = admin_client_en.get(reverse(CHANGELIST))
    assert page.status_code == 200
    content = page.content.decode()
    assert "草稿活动" in content
    assert "进行中活动" in content
    assert counts_shown(sending) in content
    assert "Launch the selected campaigns" in content

    assert admin_client_en.get(reverse("admin:campaigns_campaign_add")).status_code == 200
    editable = admin_client_en.get(reverse("admin:campaigns_campaign_change", args=[draft.pk]))
    assert editable.status_code == 200
    assert 'name="name"' in editable.content.decode()
    assert 'name="variants-0-content"' in editable.content.decode()

    frozen = admin_client_en.get(reverse("admin:campaigns_campaign_change", args=[sending.pk]))
    assert frozen.status_code == 200
    content = frozen.content.decode()
    assert 'name="name"' not in content
    assert 'name="variants-0-content"' not in content
    assert "新品上市" in content  # the variant, shown read-only
    assert counts_shown(sending) in content

    for name in ("delivery", "channelsend"):
        listing = admin_client_en.get(reverse(f"admin:campaigns_{name}_changelist"))
        assert listing.status_code == 200, name


def test_create_through_the_service_with_an_inline_variant(
    admin_client_en: Client, admin_user: User, segment: Segment
) -> None:
    response = campaign_add_posted(
        admin_client_en,
        name="会员日",
        channel="wecom_customer",
        include_segments=[segment.pk],
        holdout_share="0.2",
        labels="promo,vip",
        **{
            "variants-0-name": "A",
            "variants-0-weight": "2",
            "variants-0-content": "{{ display_name }}，会员日快乐",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    campaign = Campaign.objects.get()
    assert response["Location"] == reverse("admin:campaigns_campaign_changelist")
    assert (campaign.name, campaign.state, campaign.consent_channel) == ("会员日", "draft", "wecom")
    assert (str(campaign.holdout_share), campaign.labels) == ("0.200", ["promo", "vip"])
    assert campaign.created_by == f"user:{admin_user.pk}"
    assert list(campaign.include_segments.values_list("pk", flat=True)) == [segment.pk]
    assert list(campaign.variants.values_list("name", "weight", "content")) == [
        ("A", 2, "{{ display_name }}，会员日快乐")
    ]


def test_the_service_s_reasons_are_shown_on_the_form_and_nothing_is_saved(
    admin_client_en: Client, segment: Segment
) -> None:
    response = campaign_add_posted(
        admin_client_en,
        name="会员日",
        channel="webhook",
        include_segments=[segment.pk],
        **{"variants-0-name": "A", "variants-0-content": "{{ foo }}，你好"},
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["webhook_url"] == ["A webhook campaign needs the URL it posts to."]
    assert form.errors["consent_channel"] == ["A webhook campaign names the consent it honours."]
    assert form.non_field_errors() == [
        "The campaign is not valid.",
        "variants[0].content: Unknown variables: foo. Known: display_name, city, province, "
        "member_level, owner_name.",
    ]
    content = response.content.decode()
    assert 'value="会员日"' in content  # as entered
    assert "{{ foo }}，你好" in content
    assert not Campaign.objects.exists()


def test_change_a_draft_replaces_its_variants(admin_client_en: Client, segment: Segment) -> None:
    campaign = make_campaign(
        segment,
        name="周年庆",
        variants=[VariantInput(name="A", content="甲"), VariantInput(name="B", content="乙")],
    )
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    page = admin_client_en.get(url)
    response = admin_client_en.post(
        url,
        form_data(
            page,
            priority="3",
            **{
                "variants-0-content": "甲改",
                "variants-1-DELETE": "on",
                "variants-TOTAL_FORMS": "3",
                "variants-2-name": "C",
                "variants-2-weight": "4",
                "variants-2-content": "丙",
            },
        ),
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    campaign.refresh_from_db()
    assert campaign.priority == 3
    assert list(campaign.variants.values_list("name", "weight", "content")) == [
        ("A", 1, "甲改"),
        ("C", 4, "丙"),
    ]


def test_a_launched_campaign_cannot_be_changed_or_deleted(
    admin_client_en: Client, segment: Segment
) -> None:
    campaign = launched(segment, name="进行中")
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert admin_client_en.post(url, {"name": "改名"}).status_code == 403
    assert (
        admin_client_en.post(
            reverse("admin:campaigns_campaign_delete", args=[campaign.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    response = admin_client_en.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [campaign.pk], "post": "yes"},
    )
    assert response.status_code == 200
    assert "Cannot delete campaign" in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.name, campaign.state) == ("进行中", "sending")


def test_launch_asks_first_then_launches(
    admin_client_en: Client, segment: Segment, django_capture_on_commit_callbacks: Callable
) -> None:
    campaign = make_campaign(segment, name="会员日")
    asked = admin_client_en.post(
        reverse(CHANGELIST), {"action": "launch", "_selected_action": [campaign.pk]}
    )
    assert asked.status_code == 200
    content = asked.content.decode()
    assert "Launch these campaigns?" in content
    assert "会员日" in content
    assert 'name="confirm" value="yes"' in content
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT

    with django_capture_on_commit_callbacks() as callbacks:
        done = admin_client_en.post(
            reverse(CHANGELIST),
            {"action": "launch", "_selected_action": [campaign.pk], "confirm": "yes"},
            follow=True,
        )
    assert done.status_code == 200
    assert [str(m) for m in done.context["messages"]] == ["1 campaign launched."]
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.SENDING
    assert campaign.launched_at is not None
    assert len(callbacks) == 1  # planning queued after commit


def test_an_action_reports_each_refusal_and_does_the_rest(
    admin_client_en: Client, segment: Segment
) -> None:
    draft = make_campaign(segment, name="草稿")
    sending = launched(segment, name="进行中")
    response = admin_client_en.post(
        reverse(CHANGELIST),
        {"action": "cancel", "_selected_action": [draft.pk, sending.pk], "confirm": "yes"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "草稿: A Draft campaign cannot be cancelled.",
        "1 campaign cancelled.",
    ]
    draft.refresh_from_db()
    sending.refresh_from_db()
    assert (draft.state, sending.state) == ("draft", "cancelled")
    assert set(Delivery.objects.filter(campaign=sending).values_list("status", "reason")) == {
        (DeliveryStatus.CANCELLED, "campaign_cancelled")
    }


def test_state_changes_need_the_launch_permission(segment: Segment) -> None:
    campaign = make_campaign(segment, name="会员日")
    client = client_of(
        UserFactory(
            permissions=seeing_every_customer(
                Permission.objects.filter(content_type__app_label="campaigns").exclude(
                    codename="launch_campaign"
                )
            )
        )
    )
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert "Launch the selected campaigns" not in page.content.decode()
    client.post(
        reverse(CHANGELIST),
        {"action": "launch", "_selected_action": [campaign.pk], "confirm": "yes"},
    )
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.DRAFT


def test_the_ledger_is_read_only(admin_client_en: Client, segment: Segment) -> None:
    campaign = launched(segment)
    delivery = Delivery.objects.filter(campaign=campaign).order_by("pk").first()
    assert delivery is not None
    ChannelSendFactory(campaign=campaign, content="x")
    assert admin_client_en.get(reverse("admin:campaigns_delivery_add")).status_code == 403
    assert admin_client_en.get(reverse("admin:campaigns_channelsend_add")).status_code == 403
    detail = admin_client_en.get(reverse("admin:campaigns_delivery_change", args=[delivery.pk]))
    assert detail.status_code == 200
    assert 'name="status"' not in detail.content.decode()
    delete = reverse("admin:campaigns_delivery_delete", args=[delivery.pk])
    assert admin_client_en.post(delete, {"post": "yes"}).status_code == 403
    assert Delivery.objects.filter(pk=delivery.pk).exists()

    listing = reverse("admin:campaigns_delivery_changelist")
    found = admin_client_en.get(listing, {"q": str(delivery.customer_id)})
    assert [d.pk for d in found.context["cl"].result_list] == [delivery.pk]
    assert admin_client_en.get(listing, {"q": "abc"}).status_code == 200
    filtered = admin_client_en.get(
        listing, {"status__exact": delivery.status, "is_holdout__exact": "0"}
    )
    assert list(filtered.context["cl"].result_list) == list(
        Delivery.objects.filter(status=delivery.status, is_holdout=False).order_by("-pk")
    )


def test_the_customer_page_shows_the_deliveries_of_the_last_30_days(
    admin_client_en: Client,
) -> None:
    customer, other = wecom_customers(2)
    recent = launched(audience([customer, other], name="近"), name="近期活动")
    old = launched(audience([customer], name="远"), name="上季活动")
    long_ago = timezone.now() - timedelta(days=40)
    Delivery.objects.filter(campaign=old).update(
        planned_at=long_ago, reserved_at=long_ago, sent_at=long_ago
    )
    page = admin_client_en.get(reverse("admin:crm_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    # The section of its own (the campaign history, another section, lists every campaign).
    content = page.content.decode().partition("Contact pressure: deliveries of the last 30 days")[2]
    assert content
    assert reverse("admin:campaigns_campaign_change", args=[recent.pk]) in content
    assert "近期活动" in content
    assert "上季活动" not in content
    quiet = wecom_customers(1)[0]
    page = admin_client_en.get(reverse("admin:crm_customer_change", args=[quiet.pk]))
    assert "近期活动" not in page.content.decode()


def test_the_campaign_list_costs_the_same_queries_for_1_or_10_rows(
    admin_client_en: Client, segment: Segment
) -> None:
    url = reverse(CHANGELIST)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client_en.get(url).status_code == 200
        return len(captured)

    launched(segment, name="活动0")
    one = queries()
    for number in range(1, 10):
        launched(segment, name=f"活动{number}")
    assert queries() == one


# --- The dry run and report pages ---------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 3, 2, 22, 0, tzinfo=SHANGHAI)  # within the quiet hours 21:00-09:00
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


def dry_run_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk])


def report_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_report", args=[campaign.pk])


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
    """Staff who may view campaigns, nothing more."""
    return staff_client("view_campaign")


def row(label: str, *cells: str) -> str:
    """A line of a figure table, as the pages write it."""
    return f'<tr><th scope="row">{label}</th>{"".join(f"<td>{c}</td>" for c in cells)}</tr>'


def sample_row(customer: Customer, outcome: str, rule: str, until: str, variant: str) -> str:
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    return (
        f'<tr><td><a href="{url}">{customer.pk}</a></td><td>{customer.display_name}</td>'
        f"<td>{outcome}</td><td>{rule}</td><td>{until}</td><td>{variant}</td></tr>"
    )


def test_the_dry_run_page_shows_what_launching_now_would_do(viewer: Client) -> None:
    reachable = wecom_customers(6)
    unreachable = CustomerFactory()
    opt_out(reachable[5], at=NIGHT - timedelta(days=1))
    # Sent to twice today: the platform preset (1 a day on WeCom) caps them.
    earlier = make_campaign(audience(reachable[:2], "earlier"), name="earlier")
    for customer in reachable[:2]:
        DeliveryFactory(campaign=earlier, customer=customer, at=NIGHT - timedelta(hours=1))
    # Sent a promotion yesterday: a promotion rule defers the next one until 72 hours after.
    promo_rule = frequency_rule_create(
        actor="test",
        name="Promo once in 3 days",
        scope="label",
        label="promo",
        max_count=1,
        window_kind="rolling",
        window_hours=72,
        on_hit="defer",
        max_delay_hours=48,
    )
    promotion = make_campaign(audience(reachable[2:3], "promo"), name="promo", labels=["promo"])
    DeliveryFactory(campaign=promotion, customer=reachable[2], at=NIGHT - timedelta(hours=30))
    campaign = make_campaign(
        audience([*reachable, unreachable], "all"),
        name="会员日",
        labels=["promo"],
        quiet_hours_start=time(21, 0),
        quiet_hours_end=time(9, 0),
    )
    preset = FrequencyRule.objects.get(is_platform_preset=True).name
    deliveries_before = Delivery.objects.count()

    with time_machine.travel(NIGHT, tick=False):
        page = viewer.get(dry_run_url(campaign))

    assert page.status_code == 200
    assert Delivery.objects.count() == deliveries_before  # nothing written
    assertContains(
        page, "What launching this campaign at March 2, 2026, 10 p.m. (Beijing time) would do."
    )
    for fragment in [
        # The funnel: held back at each step, and who remains.
        row("Audience", "", "7"),
        row("Opted out", "1", "6"),
        row("No identity for the channel", "1", "5"),
        row(f"Capped by “{preset}”", "2", "3"),
        row("Deferred by “Promo once in 3 days”", "1", "2"),
        row("Holdout (control group)", "0", "2"),
        row(preset, "2", "0"),  # capped, deferred
        row("Promo once in 3 days", "0", "1"),
        row("A", "1", "2", "100.00%"),  # weight, would be sent, share
        sample_row(reachable[0], "Capped by a frequency rule", preset, "—", "—"),
        sample_row(
            reachable[2],
            "Deferred by a frequency rule",
            promo_rule.name,
            "March 4, 2026, 4 p.m. (Beijing time)",  # 72 hours after the promotion
            "—",
        ),
        sample_row(reachable[3], "Would be sent", "—", "—", "A"),
        sample_row(reachable[5], "Opted out", "—", "—", "—"),
        sample_row(unreachable, "No identity for the channel", "—", "—", "—"),
    ]:
        assertContains(page, fragment, count=1, html=True)
    assertContains(page, '<td class="campaign-to-send">2</td>')
    assertContains(
        page,
        "Now is within the campaign's quiet hours (21:00–09:00, Beijing time): launched now, "
        "its sends would wait until March 3, 2026, 9 a.m. (Beijing time).",
    )
    assert len(page.context["sample"]) == 7

    with time_machine.travel(NIGHT - timedelta(hours=10), tick=False):  # noon
        page = viewer.get(dry_run_url(campaign))
    assertContains(page, "Now is outside the campaign's quiet hours (21:00–09:00, Beijing time)")


def test_the_report_page_shows_each_arm_the_lift_and_a_chart(viewer: Client) -> None:
    campaign = CampaignFactory(name="周年庆", variants=["A", "B"], state=CampaignState.COMPLETED)
    report_case(campaign, CustomerFactory.create_batch(9), at=T0)

    page = viewer.get(report_url(campaign))

    assert page.status_code == 200
    columns = "".join(f'<th scope="col">{c}</th>' for c in ["", "All variants", "A", "B"])
    assertContains(page, f"<tr>{columns}</tr>", html=True)
    shared = "1 on links the whole message shared: clicker unknown"
    for fragment in [
        # The arms: the campaign, then each variant; the holdout belongs to no variant.
        row("Audience planned", "9", "4", "2"),
        row("Holdout (control group)", "3", "—", "—"),
        row("Suppressed", "2", "1", "0"),
        row("Waiting", "1", "1", "0"),
        row("Cancelled", "0", "0", "0"),
        row("Sent", "3", "2", "1"),
        row("Failed", "1", "0", "1"),
        row("Recipients who clicked", "1", "1", "0"),
        # One click on a link the whole text of B shared: no recipient known (issue 16).
        row("Clicks", f"3 ({shared})", "2", f"1 ({shared})"),
        row("Recipients who converted", "2", "1", "1"),
        row("Conversion rate", "66.67%", "50.00%", "100.00%"),
        row("Attributed orders", "3", "1", "2"),
        row("Attributed revenue", "220.00", "100.00", "120.00"),
        row("Attributed revenue per recipient", "73.33", "50.00", "120.00"),
        # Held back, by reason.
        row("Opted out", "1", "1", "0"),
        row("Capped by a frequency rule", "1", "0", "0"),
        row("Deferred by quiet hours", "1", "1", "0"),
        # The holdout, then the lift of each arm against it: rates, absolute and relative
        # lift, the 95 % interval, the p-value and the incremental revenue.
        row("Converted", "1"),
        row("Revenue in the conversion window", "30.00"),
        row(
            "All variants",
            "66.67%",
            "50.00%",
            "+16.67 pp",
            "+33.33%",
            "-70.78 to +104.12 pp",
            "0.7094",
            "175.00",
        ),
        row("A", "50.00%", "50.00%", "0.00 pp", "0.00%", "-98.00 to +98.00 pp", "1.0000", "70.00"),
        row(
            "B",
            "100.00%",
            "50.00%",
            "+50.00 pp",
            "+100.00%",
            "-19.30 to +119.30 pp",
            "0.3865",
            "105.00",
        ),
    ]:
        assertContains(page, fragment, count=1, html=True)
    assertContains(
        page, row("Revenue in the conversion window", "220.00", "100.00", "120.00"), html=True
    )
    assertContains(page, row("Conversion rate", "50.00%"), html=True)  # the holdout's

    # The charts' data (drawn by ECharts): each variant's rate and the holdout's, in percent,
    # then each arm's lift in percentage points within its 95 % interval.
    assert json_script_data(page, "rate-chart-data") == {
        "title": "Conversion rate",
        "names": ["A", "B", "Holdout"],
        "values": [50.0, 100.0, 50.0],
        "labels": ["50.00%", "100.00%", "50.00%"],
        "holdout": [False, False, True],
        "axis_label": "Conversion rate (%)",
    }
    assert json_script_data(page, "lift-chart-data") == {
        "title": "Lift against the holdout",
        "names": ["All variants", "A", "B"],
        "estimates": [[-70.78, 16.67, 104.12], [-98.0, 0.0, 98.0], [-19.3, 50.0, 119.3]],
        "labels": [
            "+16.67 pp [-70.78, +104.12]",
            "0.00 pp [-98.00, +98.00]",
            "+50.00 pp [-19.30, +119.30]",
        ],
        "axis_label": "Lift in percentage points, 95% confidence interval",
    }
    assertContains(page, "/static/core/vendor/echarts/echarts.min.js")
    assertContains(page, "/static/campaigns/report_charts.js")
    for drawn_by_the_server in ("<rect", "<circle", "<line"):
        assertNotContains(page, drawn_by_the_server)


def test_an_empty_report_shows_unknown_figures(viewer: Client) -> None:
    campaign = CampaignFactory(name="空活动", variants=["A", "B"], state=CampaignState.COMPLETED)
    page = viewer.get(report_url(campaign))
    assert page.status_code == 200
    assertContains(page, row("Conversion rate", "—", "—", "—"), html=True)
    assertContains(page, row("A", *["—"] * 7), html=True)
    assertContains(page, "Nobody was held back.")
    rates = json_script_data(page, "rate-chart-data")
    assert (rates["values"], rates["labels"]) == ([None, None, None], ["—", "—", "—"])
    lifts = json_script_data(page, "lift-chart-data")
    assert (lifts["estimates"], lifts["labels"]) == ([None, None, None], ["—", "—", "—"])


def test_a_report_where_nobody_converted_shows_no_interval(viewer: Client) -> None:
    """Nobody converted in either arm: the lift is 0 points, but a Wald interval of no
    variance (0.00 to 0.00) would look precise where there is no data: it is unknown."""
    campaign = CampaignFactory(name="冷启动", variants=["A"], state=CampaignState.COMPLETED)
    variant = campaign.variants.get()
    for _sent in range(3):
        DeliveryFactory(campaign=campaign, variant=variant, at=T0)
    for _held in range(2):
        DeliveryFactory(campaign=campaign, is_holdout=True, status=DeliveryStatus.HELD_OUT, at=T0)

    page = viewer.get(report_url(campaign))

    for name in ("All variants", "A"):
        lift = [name, "0.00%", "0.00%", "0.00 pp", "—", "—", "—", "0.00"]
        assertContains(page, row(*lift), count=1, html=True)
    assertNotContains(page, "0.00 to 0.00")
    lifts = json_script_data(page, "lift-chart-data")
    assert (lifts["estimates"], lifts["labels"]) == ([None, None], ["—", "—"])
    assertContains(page, "the confidence interval and the p-value also when nobody converted")


def test_the_pages_need_the_view_permission(segment: Segment) -> None:
    campaign = launched(segment, name="进行中")
    others = staff_client("view_delivery", "view_frequencyrule")
    for url in (dry_run_url(campaign), report_url(campaign)):
        assert others.get(url).status_code == 403
        anonymous = Client().get(url)
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith(reverse("admin:login"))
    editor = staff_client("change_campaign")  # change implies view
    assert editor.get(report_url(campaign)).status_code == 200
    assert editor.get(reverse("admin:campaigns_campaign_report", args=[999999])).status_code == 404


def test_the_change_form_links_to_the_pages(viewer: Client, segment: Segment) -> None:
    draft = make_campaign(segment, name="草稿")
    sending = launched(segment, name="进行中")
    scheduled = make_campaign(
        segment, name="定时", schedule_kind="at", scheduled_at=timezone.now() + timedelta(days=1)
    )
    campaign_launch(campaign_id=scheduled.pk, actor="test")
    pages = {
        draft: ["Dry run"],
        scheduled: ["Dry run", "Report"],
        sending: ["Report"],
    }
    for campaign, shown in pages.items():
        page = viewer.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        assert page.status_code == 200
        links = {
            "Dry run": f'<li><a href="{dry_run_url(campaign)}">Dry run</a></li>',
            "Report": f'<li><a href="{report_url(campaign)}">Report</a></li>',
        }
        for name, link in links.items():
            assertContains(page, link, count=1 if name in shown else 0, html=True)
        assert viewer.get(dry_run_url(campaign)).status_code == 200
        assert viewer.get(report_url(campaign)).status_code == 200


def test_the_report_page_costs_the_same_queries_for_few_or_many_deliveries(
    viewer: Client,
) -> None:
    campaign = CampaignFactory(name="量", variants=["A", "B"], state=CampaignState.COMPLETED)
    customers = CustomerFactory.create_batch(40)
    report_case(campaign, customers[:9], at=T0)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(report_url(campaign)).status_code == 200
        return len(captured)

    few = queries()
    a, b = campaign.variants.order_by("name")
    rule = FrequencyRule.objects.get(is_platform_preset=True)
    for i, customer in enumerate(customers[9:]):
        at = T0 + timedelta(hours=1, minutes=i)
        DeliveryFactory(
            campaign=campaign,
            customer=customer,
            variant=a if i % 2 else b,
            status=DeliveryStatus.SUPPRESSED if i % 3 == 0 else DeliveryStatus.SENT,
            reason=DeliveryReason.CAPPED if i % 3 == 0 else "",
            rule=rule if i % 3 == 0 else None,
            at=at,
            sent_at=at,
        )
        OrderFactory(customer=customer, paid_at=at + timedelta(days=1), total_amount=10)
    conversions_attribute(customer_ids=[c.pk for c in customers[9:]])
    assert Delivery.objects.filter(campaign=campaign).count() == 40
    assertContains(viewer.get(report_url(campaign)), row(rule.name, "11", "5", "6"), html=True)
    assert queries() == few
