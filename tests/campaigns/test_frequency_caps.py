"""Frequency caps, as deliveries are judged when a campaign is planned (if it may send at once)
and in each reservation batch: examples of each rule's window, its action when hit and the
campaign flags; then a state machine that drives rules, campaigns, opt-outs and a clock at
random and checks every judgment against a plain-Python reading of the rules, and the caps
over the whole history."""

import dataclasses
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from campaigns.models import (
    COUNTED_STATUSES,
    Campaign,
    Channel,
    Delivery,
    FrequencyRule,
)
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.frequency_rules import frequency_rule_create
from campaigns.services.reservation import deliveries_reserve_batch
from crm.models import Consent, Customer
from crm.services.consents import consent_record
from segments.models import Segment
from tests.campaigns.support import (
    HOOK_URL,
    audience,
    make_campaign,
    opt_out,
    statuses,
    webhook_campaign,
    wecom_customers,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Tuesday 2026-03-10, 10:00 in Shanghai.
T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
QUIET_HOURS = {"quiet_hours_start": time(21), "quiet_hours_end": time(9)}
EVENING = datetime(2026, 3, 10, 22, 0, tzinfo=SHANGHAI)  # in the quiet hours
MORNING = datetime(2026, 3, 11, 9, 0, tzinfo=SHANGHAI)  # when they end
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_platform_preset() -> None:
    """The examples state their own rules: the WeCom preset (1 a day) is switched off."""
    FrequencyRule.objects.filter(is_platform_preset=True).update(is_active=False)


def cap(**fields: Any) -> FrequencyRule:
    """A rule through the service; by default 1 send in the business day, on every channel."""
    values: dict[str, Any] = {
        "name": f"rule-{next(_names)}",
        "scope": "all_channels",
        "max_count": 1,
        "window_kind": "calendar",
        "calendar_unit": "day",
        **fields,
    }
    return frequency_rule_create(actor="test", **values)


def campaign_to(customers: list[Customer], **overrides: Any) -> Campaign:
    """A webhook campaign (reachable without an identity) to `customers`, no holdout, no
    quiet hours."""
    return webhook_campaign(audience(customers, name=f"audience-{next(_names)}"), **overrides)


def start(campaign: Campaign, at: datetime) -> None:
    """Launched and planned at `at`: outside its quiet hours each delivery is judged (reserved,
    held out, deferred or suppressed) as it is written; inside them it waits."""
    campaign_launch(campaign_id=campaign.pk, actor="test", at=at)
    campaign_plan(campaign_id=campaign.pk, at=at)


def send(customers: list[Customer], at: datetime, **overrides: Any) -> Campaign:
    """A campaign to `customers` started at `at`."""
    campaign = campaign_to(customers, **overrides)
    start(campaign, at)
    return campaign


def delivery(campaign: Campaign, customer: Customer) -> Delivery:
    return Delivery.objects.get(campaign=campaign, customer=customer)


def verdict(campaign: Campaign, customer: Customer) -> tuple[str, str, int | None]:
    found = delivery(campaign, customer)
    return found.status, found.reason, found.rule_id


def test_a_skipping_day_rule_refuses_a_second_send_until_the_next_business_day() -> None:
    rule = cap()
    customer = CustomerFactory()
    last_second = datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    next_day = datetime(2026, 3, 10, 16, 0, 0, tzinfo=UTC)  # 00:00:00 on the 11th

    first = send([customer], last_second)
    second = send([customer], last_second)
    third = send([customer], next_day)

    assert verdict(first, customer) == ("reserved", "", None)
    assert delivery(first, customer).reserved_at == last_second
    refused = delivery(second, customer)
    assert (refused.status, refused.reason, refused.rule_id) == ("suppressed", "capped", rule.pk)
    assert (refused.reserved_at, refused.due_at) == (None, last_second)
    assert verdict(third, customer) == ("reserved", "", None)
    assert delivery(third, customer).reserved_at == next_day


def test_a_rolling_window_frees_exactly_its_length_after_the_oldest_send() -> None:
    rule = cap(max_count=2, window_kind="rolling", window_hours=6, calendar_unit="")
    customer = CustomerFactory()
    send([customer], T0)
    send([customer], T0 + timedelta(hours=1))

    just_before = send([customer], T0 + timedelta(hours=6, microseconds=-1))
    at_length = send([customer], T0 + timedelta(hours=6))
    # The send at T0 has left; those at T0+1h and T0+6h fill the window again.
    after_it = send([customer], T0 + timedelta(hours=6))

    assert verdict(just_before, customer) == ("suppressed", "capped", rule.pk)
    assert verdict(at_length, customer) == ("reserved", "", None)
    assert verdict(after_it, customer) == ("suppressed", "capped", rule.pk)


def test_a_deferring_rule_moves_the_send_to_when_the_window_frees_and_reserves_it_then() -> None:
    rule = cap(window_kind="rolling", window_hours=4, calendar_unit="", on_hit="defer",
               max_delay_hours=24)  # fmt: skip
    customer = CustomerFactory()
    send([customer], T0)
    deferred = send([customer], T0 + timedelta(hours=1))

    waiting = delivery(deferred, customer)
    assert (waiting.status, waiting.reason, waiting.rule_id) == ("pending", "capped", rule.pk)
    assert (waiting.due_at, waiting.first_due_at) == (
        T0 + timedelta(hours=4),
        T0 + timedelta(hours=1),
    )
    assert waiting.reserved_at is None

    early = deliveries_reserve_batch(
        campaign_id=deferred.pk, at=T0 + timedelta(hours=4, seconds=-1)
    )
    assert (early.reserved_ids, early.counts) == ([], {})
    assert delivery(deferred, customer).status == "pending"

    on_time = deliveries_reserve_batch(campaign_id=deferred.pk, at=T0 + timedelta(hours=4))
    assert on_time.reserved_ids == [waiting.pk]
    reserved = delivery(deferred, customer)
    assert (reserved.status, reserved.reserved_at, reserved.rule_id) == (
        "reserved",
        T0 + timedelta(hours=4),
        None,
    )


def test_a_deferring_day_rule_moves_the_send_to_the_next_business_midnight() -> None:
    rule = cap(on_hit="defer", max_delay_hours=24)
    customer = CustomerFactory()
    send([customer], T0)
    deferred = send([customer], T0 + timedelta(hours=3))

    assert verdict(deferred, customer) == ("pending", "capped", rule.pk)
    assert delivery(deferred, customer).due_at == datetime(2026, 3, 11, tzinfo=SHANGHAI)
    outcome = deliveries_reserve_batch(
        campaign_id=deferred.pk, at=datetime(2026, 3, 11, tzinfo=SHANGHAI)
    )
    assert len(outcome.reserved_ids) == 1


def test_a_deferral_past_the_maximum_delay_from_the_first_due_time_is_suppressed() -> None:
    rule = cap(window_kind="rolling", window_hours=4, calendar_unit="", on_hit="defer",
               max_delay_hours=3)  # fmt: skip
    customer, other = CustomerFactory(), CustomerFactory()
    send([customer, other], T0)

    # Due at T0+30min, the window frees at T0+4h: 3.5 hours later, past the 3 allowed.
    too_late = send([customer], T0 + timedelta(minutes=30))
    # Due at T0+1h: exactly 3 hours later is still allowed.
    deferred = send([customer, other], T0 + timedelta(hours=1))

    refused = delivery(too_late, customer)
    assert (refused.status, refused.reason, refused.rule_id) == (
        "suppressed",
        "cap_delay_exceeded",
        rule.pk,
    )
    assert (refused.due_at, refused.reserved_at) == (T0 + timedelta(minutes=30), None)
    assert verdict(deferred, customer) == ("pending", "capped", rule.pk)
    assert delivery(deferred, customer).due_at == T0 + timedelta(hours=4)

    # A campaign ignoring the caps sends at T0+3h; at T0+4h the window would free at T0+7h,
    # 6 hours after the first due time: the delay counts from there, not from the deferral.
    send([customer, other], T0 + timedelta(hours=3), respects_caps=False)
    deliveries_reserve_batch(campaign_id=deferred.pk, at=T0 + timedelta(hours=4))
    assert verdict(deferred, customer) == ("suppressed", "cap_delay_exceeded", rule.pk)
    assert verdict(deferred, other) == ("suppressed", "cap_delay_exceeded", rule.pk)


def test_a_deferral_into_quiet_hours_waits_for_their_end_without_naming_the_rule() -> None:
    rule = cap(on_hit="defer", max_delay_hours=48)
    customer = CustomerFactory()
    send([customer], T0)
    deferred = send([customer], T0 + timedelta(hours=1), **QUIET_HOURS)
    midnight = datetime(2026, 3, 11, tzinfo=SHANGHAI)
    assert verdict(deferred, customer) == ("pending", "capped", rule.pk)
    assert delivery(deferred, customer).due_at == midnight

    at_midnight = deliveries_reserve_batch(campaign_id=deferred.pk, at=midnight)
    assert (at_midnight.reserved_ids, at_midnight.counts) == ([], {"quiet_hours": 1})
    assert verdict(deferred, customer) == ("pending", "quiet_hours", None)
    assert delivery(deferred, customer).due_at == MORNING

    in_the_morning = deliveries_reserve_batch(campaign_id=deferred.pk, at=MORNING)
    assert in_the_morning.reserved_ids == [delivery(deferred, customer).pk]
    assert delivery(deferred, customer).reserved_at == MORNING


def test_a_label_rule_counts_and_judges_only_the_campaigns_carrying_the_label() -> None:
    rule = cap(scope="label", label="promo")
    first, second = CustomerFactory(), CustomerFactory()
    plain = send([first, second], T0)
    promo = send([first], T0 + timedelta(hours=1), labels=["promo"])
    promo_vip = send([first, second], T0 + timedelta(hours=2), labels=["vip", "promo"])
    plain_again = send([first], T0 + timedelta(hours=3), labels=["vip"])

    assert verdict(plain, first) == ("reserved", "", None)
    assert verdict(promo, first) == ("reserved", "", None)  # the unlabelled send is not counted
    assert verdict(promo_vip, first) == ("suppressed", "capped", rule.pk)
    assert verdict(promo_vip, second) == ("reserved", "", None)
    assert verdict(plain_again, first) == ("reserved", "", None)  # not judged by the rule


def test_a_channel_rule_counts_and_judges_only_its_channel() -> None:
    rule = cap(scope="channel", channel="webhook")
    customer = wecom_customers(1)[0]
    wecom = send([customer], T0, channel=Channel.WECOM_CUSTOMER, webhook_url="",
                 consent_channel="")  # fmt: skip
    hook = send([customer], T0 + timedelta(hours=1))
    hook_again = send([customer], T0 + timedelta(hours=2))
    wecom_again = send([customer], T0 + timedelta(hours=3), channel=Channel.WECOM_CUSTOMER,
                       webhook_url="", consent_channel="")  # fmt: skip

    assert verdict(wecom, customer) == ("reserved", "", None)
    assert verdict(hook, customer) == ("reserved", "", None)
    assert verdict(hook_again, customer) == ("suppressed", "capped", rule.pk)
    assert verdict(wecom_again, customer) == ("reserved", "", None)


def test_a_campaign_not_counting_toward_caps_is_judged_but_never_counted() -> None:
    rule = cap()
    customer = CustomerFactory()
    uncounted = send([customer], T0, counts_toward_caps=False)
    counted = send([customer], T0 + timedelta(hours=1))
    uncounted_again = send([customer], T0 + timedelta(hours=2), counts_toward_caps=False)

    assert verdict(uncounted, customer) == ("reserved", "", None)
    assert verdict(counted, customer) == ("reserved", "", None)
    assert verdict(uncounted_again, customer) == ("suppressed", "capped", rule.pk)


def test_a_campaign_ignoring_caps_sends_past_them_and_its_sends_count() -> None:
    rule = cap()
    first, second = CustomerFactory(), CustomerFactory()
    send([first], T0)
    ignoring = send([first, second], T0 + timedelta(hours=1), respects_caps=False)
    respecting = send([first, second], T0 + timedelta(hours=2))

    assert verdict(ignoring, first) == ("reserved", "", None)
    assert verdict(ignoring, second) == ("reserved", "", None)
    assert verdict(respecting, first) == ("suppressed", "capped", rule.pk)
    assert verdict(respecting, second) == ("suppressed", "capped", rule.pk)


def test_the_most_restrictive_rule_wins() -> None:
    cap(window_kind="rolling", window_hours=2, calendar_unit="", on_hit="defer",
        max_delay_hours=48)  # fmt: skip
    daily = cap(on_hit="defer", max_delay_hours=48)
    customer = CustomerFactory()
    send([customer], T0)

    both_defer = send([customer], T0 + timedelta(hours=1))
    # The short window frees at 12:00, the day at midnight: the later one holds.
    assert verdict(both_defer, customer) == ("pending", "capped", daily.pk)
    assert delivery(both_defer, customer).due_at == datetime(2026, 3, 11, tzinfo=SHANGHAI)

    weekly = cap(calendar_unit="week", max_count=1)
    refused = send([customer], T0 + timedelta(hours=1))
    assert verdict(refused, customer) == ("suppressed", "capped", weekly.pk)


def test_a_rule_hit_harder_than_its_maximum_frees_when_enough_sends_have_left() -> None:
    """Sends made before a rule existed (or by a campaign ignoring caps) may exceed it: the
    window frees once the count falls below the maximum, not when the oldest send leaves."""
    customer = CustomerFactory()
    for hour in (0, 1, 2):
        send([customer], T0 + timedelta(hours=hour))
    rule = cap(max_count=2, window_kind="rolling", window_hours=10, calendar_unit="",
               on_hit="defer", max_delay_hours=48)  # fmt: skip

    deferred = send([customer], T0 + timedelta(hours=3))

    # Three sends in the window, two allowed: it frees when the second one (T0+1h) leaves.
    assert verdict(deferred, customer) == ("pending", "capped", rule.pk)
    assert delivery(deferred, customer).due_at == T0 + timedelta(hours=11)


def test_an_opt_out_after_planning_suppresses_at_reservation() -> None:
    cap()
    opted_out, opted_out_elsewhere = CustomerFactory(), CustomerFactory()
    campaign = campaign_to([opted_out, opted_out_elsewhere], **QUIET_HOURS)
    start(campaign, EVENING)  # written pending, due when the quiet hours end
    assert statuses(campaign) == {"pending": 2}
    for customer, channel in ((opted_out, "sms"), (opted_out_elsewhere, "wecom")):
        opt_out(customer, channel=channel, at=EVENING + timedelta(hours=1))

    outcome = deliveries_reserve_batch(campaign_id=campaign.pk, at=MORNING)

    assert outcome.counts == {"opted_out": 1, "reserved": 1}
    refused = delivery(campaign, opted_out)
    assert (refused.status, refused.reason, refused.rule_id, refused.reserved_at) == (
        "suppressed",
        "opted_out",
        None,
        None,
    )
    assert outcome.reserved_ids == [delivery(campaign, opted_out_elsewhere).pk]


def test_holdout_members_are_judged_like_the_others_but_never_counted() -> None:
    rule = cap()
    capped_member, free_member = CustomerFactory(), CustomerFactory()
    holdout = campaign_to([capped_member, free_member], **QUIET_HOURS)
    start(holdout, EVENING)
    # Both drawn into the control group (the draw itself is tested in test_planning).
    Delivery.objects.filter(campaign=holdout).update(is_holdout=True, variant=None)
    send([capped_member], MORNING - timedelta(hours=1))

    outcome = deliveries_reserve_batch(campaign_id=holdout.pk, at=MORNING)

    assert (outcome.reserved_ids, outcome.counts) == ([], {"capped": 1, "held_out": 1})
    assert verdict(holdout, capped_member) == ("suppressed", "capped", rule.pk)
    held = delivery(holdout, free_member)
    assert (held.status, held.reason, held.reserved_at) == ("held_out", "quiet_hours", MORNING)
    # The held-out send does not count: a real one may go the same day.
    later = send([free_member], MORNING + timedelta(hours=1))
    assert verdict(later, free_member) == ("reserved", "", None)


# --- The state machine ------------------------------------------------------------------------

POOL_SIZE = 6  # the last one has no WeCom identity
LABELS = ("promo", "vip")
MAX_RULES = 3
MAX_CAMPAIGNS = 8
INFINITY = datetime.max.replace(tzinfo=UTC)
STARTS = [
    T0,
    datetime(2026, 3, 10, 23, 59, 59, tzinfo=SHANGHAI),  # a second before a business day ends
    datetime(2026, 3, 15, 23, 30, tzinfo=SHANGHAI),  # Sunday night: the week ends
    datetime(2026, 3, 31, 22, 0, tzinfo=SHANGHAI),  # the month ends
]
# (respects_caps, counts_toward_caps): the usual campaign, and one that overfills the windows
# of the others, twice as often as each other kind.
FLAGS = [(True, True), (True, True), (True, False), (False, True), (False, True), (False, False)]


@st.composite
def rule_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A coherent rule: its scope, window, maximum and action when hit (the usual ones more
    often: a maximum of 1, a day, deferring)."""
    scope = draw(st.sampled_from(["all_channels", "channel", "label"]))
    fields: dict[str, Any] = {"scope": scope, "max_count": draw(st.sampled_from([1, 1, 2, 3]))}
    if scope == "channel":
        fields["channel"] = draw(st.sampled_from([Channel.WECOM_CUSTOMER, Channel.WEBHOOK]))
    if scope == "label":
        fields["label"] = draw(st.sampled_from(LABELS))
    if draw(st.booleans()):
        hours = draw(st.sampled_from([1, 2, 5, 24]))
        fields.update(window_kind="rolling", window_hours=hours, calendar_unit="")
    else:
        fields["calendar_unit"] = draw(st.sampled_from(["day", "day", "week", "month"]))
    if draw(st.sampled_from([True, True, False])):
        fields.update(on_hit="defer", max_delay_hours=draw(st.sampled_from([2, 24, 48, 200])))
    return fields


@dataclass(frozen=True)
class CampaignSpec:
    is_wecom: bool
    labels: list[str]
    respects_caps: bool
    counts_toward_caps: bool
    holdout_share: Decimal
    members: frozenset[int]  # indexes in the pool
    has_quiet_hours: bool  # 21:00-09:00, else none


@st.composite
def campaign_specs(draw: st.DrawFn) -> CampaignSpec:
    respects_caps, counts_toward_caps = draw(st.sampled_from(FLAGS))
    return CampaignSpec(
        is_wecom=draw(st.booleans()),
        labels=draw(st.lists(st.sampled_from(LABELS), unique=True)),
        respects_caps=respects_caps,
        counts_toward_caps=counts_toward_caps,
        holdout_share=draw(st.sampled_from([Decimal("0"), Decimal("0.5")])),
        members=draw(st.frozensets(st.integers(0, POOL_SIZE - 1), min_size=1)),
        has_quiet_hours=draw(st.sampled_from([False, False, True])),
    )


@dataclass(frozen=True)
class Row:
    """A delivery as the checks read it."""

    id: int
    campaign_id: int
    customer_id: int
    status: str
    reason: str
    rule_id: int | None
    due_at: datetime
    first_due_at: datetime
    reserved_at: datetime | None
    is_holdout: bool


def rows() -> dict[int, Row]:
    fields = list(Row.__dataclass_fields__)
    return {values[0]: Row(*values) for values in Delivery.objects.values_list(*fields)}


def applies(frequency_rule: FrequencyRule, campaign: Campaign) -> bool:
    """The campaign's sends are in the rule's scope (and so the rule judges them)."""
    if frequency_rule.scope == "channel":
        return campaign.channel == frequency_rule.channel
    if frequency_rule.scope == "label":
        return frequency_rule.label in campaign.labels
    return True


def window_holds(frequency_rule: FrequencyRule, sent_at: datetime, at: datetime) -> bool:
    """A send made at `sent_at` counts at `at`: in the last N hours (a send counts for N hours
    from its instant), or in the same business day, ISO week or month."""
    if sent_at > at:
        return False
    if frequency_rule.window_kind == "rolling":
        assert frequency_rule.window_hours is not None
        return at - timedelta(hours=frequency_rule.window_hours) < sent_at
    sent, now = sent_at.astimezone(SHANGHAI).date(), at.astimezone(SHANGHAI).date()
    if frequency_rule.calendar_unit == "day":
        return sent == now
    if frequency_rule.calendar_unit == "week":
        return sent.isocalendar()[:2] == now.isocalendar()[:2]
    return (sent.year, sent.month) == (now.year, now.month)


def window_frees(frequency_rule: FrequencyRule, sent: list[datetime], at: datetime) -> datetime:
    """The first instant after `at` when fewer than max_count of the sends `sent` (sorted, all
    counting at `at`) count."""
    if frequency_rule.window_kind == "rolling":
        assert frequency_rule.window_hours is not None
        leaving = sent[len(sent) - frequency_rule.max_count]
        return leaving + timedelta(hours=frequency_rule.window_hours)
    day = at.astimezone(SHANGHAI).date()
    if frequency_rule.calendar_unit == "day":
        following = day + timedelta(days=1)
    elif frequency_rule.calendar_unit == "week":
        following = day + timedelta(days=7 - day.weekday())
    else:
        following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime(following.year, following.month, following.day, tzinfo=SHANGHAI)


def quiet_until(campaign: Campaign, at: datetime) -> datetime | None:
    """When the quiet hours holding `at` end (business time), None outside them."""
    start_time, end_time = campaign.quiet_hours_start, campaign.quiet_hours_end
    if start_time is None or end_time is None:
        return None
    local = at.astimezone(SHANGHAI)
    clock, day = local.time(), local.date()
    if start_time < end_time:
        is_quiet = start_time <= clock < end_time
    else:
        is_quiet = clock >= start_time or clock < end_time
        day += timedelta(days=int(clock >= start_time))
    return datetime.combine(day, end_time, tzinfo=SHANGHAI) if is_quiet else None


@dataclass(frozen=True)
class Expected:
    status: str
    reason: str | None  # None: capped or cap_delay_exceeded, as the rule named says
    due_at: datetime
    reserved_at: datetime | None
    rule_ids: frozenset[int]  # the rules that may be named (several when they tie)


def judge(
    row: Row,
    campaign: Campaign,
    frequency_rules: list[FrequencyRule],
    counted: list[tuple[int, datetime, Campaign]],
    opted_out: set[tuple[int, str]],
    at: datetime,
) -> Expected:
    """What judging `row` at `at` (planning it, or in a reservation batch) should do, read
    from the rules in plain Python."""
    if (row.customer_id, campaign.consent_channel) in opted_out:
        return Expected("suppressed", "opted_out", row.due_at, None, frozenset())
    holds: dict[int, datetime] = {}
    for frequency_rule in frequency_rules:
        if not (campaign.respects_caps and applies(frequency_rule, campaign)):
            continue
        sent = sorted(
            sent_at
            for customer_id, sent_at, other in counted
            if customer_id == row.customer_id
            and applies(frequency_rule, other)
            and window_holds(frequency_rule, sent_at, at)
        )
        if len(sent) < frequency_rule.max_count:
            continue
        if frequency_rule.on_hit == "skip":
            holds[frequency_rule.pk] = INFINITY
            continue
        frees = window_frees(frequency_rule, sent, at)
        assert frees > at, "a deferral moves the send later"
        assert frequency_rule.max_delay_hours is not None
        latest = row.first_due_at + timedelta(hours=frequency_rule.max_delay_hours)
        holds[frequency_rule.pk] = INFINITY if frees > latest else frees
    if not holds:
        status = "held_out" if row.is_holdout else "reserved"
        return Expected(status, row.reason, row.due_at, at, frozenset())
    until = max(holds.values())
    named = frozenset(pk for pk, held_until in holds.items() if held_until == until)
    if until == INFINITY:
        return Expected("suppressed", None, row.due_at, None, named)
    return Expected("pending", "capped", until, None, named)


@dataclass
class Pool:
    """What the machine works on, made once by the test: the customers and a static segment
    for each non-empty set of them (by the set's indexes in `customer_ids`)."""

    customer_ids: list[int]
    reachable: set[int]  # those with a WeCom identity
    segment_ids: dict[frozenset[int], int]


class ReservationMachine(RuleBasedStateMachine):
    """Rules, campaigns and opt-outs made at random while a clock moves forward; every judgment
    (as a campaign is planned, and in each reservation batch) is compared with `judge`, and
    the caps are checked over the whole history after each step."""

    # Set by the test before the machine runs.
    pool = Pool(customer_ids=[], reachable=set(), segment_ids={})

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown: it starts from the pool.
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.clock = T0
        self.calls = 0  # judging steps (plannings and reservation batches) run so far
        self.active_rules: dict[int, FrequencyRule] = {}  # the active rules
        self.rule_since: dict[int, int] = {}  # active rule -> steps run before it existed
        self.reserved_by: dict[int, int] = {}  # delivery -> the step that reserved it
        self.campaigns: dict[int, Campaign] = {}
        self.audiences: dict[int, set[int]] = {}  # campaign -> its customers
        self.rows: dict[int, Row] = {}  # the deliveries, read after each write

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    @initialize(
        keep_preset=st.sampled_from([False, False, True]),
        start=st.sampled_from(STARTS),
        rules=st.lists(rule_fields(), min_size=1, max_size=2),
        specs=st.lists(campaign_specs(), min_size=1, max_size=2),
    )
    def begin(
        self,
        keep_preset: bool,
        start: datetime,
        rules: list[dict[str, Any]],
        specs: list[CampaignSpec],
    ) -> None:
        """The clock's start, the WeCom preset on or off, rules in force from the start and
        the first campaigns (the rules that make more may be left out of an example)."""
        self.clock = start
        preset = FrequencyRule.objects.get(is_platform_preset=True)
        preset.is_active = keep_preset
        preset.save(update_fields=["is_active"])
        if keep_preset:
            self.active_rules[preset.pk] = preset
            self.rule_since[preset.pk] = 0
        for fields in rules:
            self._create_rule(fields)
        for spec in specs:
            self._launch(spec)

    @precondition(lambda self: len(self.active_rules) < MAX_RULES)
    @rule(fields=rule_fields())
    def add_rule(self, fields: dict[str, Any]) -> None:
        self._create_rule(fields)

    def _create_rule(self, fields: dict[str, Any]) -> None:
        frequency_rule = cap(**fields)
        self.active_rules[frequency_rule.pk] = frequency_rule
        self.rule_since[frequency_rule.pk] = self.calls

    @precondition(lambda self: len(self.campaigns) < MAX_CAMPAIGNS)
    @rule(spec=campaign_specs())
    def launch(self, spec: CampaignSpec) -> None:
        self._launch(spec)

    def _launch(self, spec: CampaignSpec) -> None:
        """A campaign launched and planned now: judged as it is written, outside its quiet
        hours; compared with `judge`."""
        channel: dict[str, Any] = (
            {"channel": Channel.WECOM_CUSTOMER}
            if spec.is_wecom
            else {"channel": Channel.WEBHOOK, "webhook_url": HOOK_URL, "consent_channel": "sms"}
        )
        quiet = {"quiet_hours_start": time(21), "quiet_hours_end": time(9)}
        campaign = make_campaign(
            Segment.objects.get(pk=self.pool.segment_ids[spec.members]),
            labels=spec.labels,
            respects_caps=spec.respects_caps,
            counts_toward_caps=spec.counts_toward_caps,
            holdout_share=spec.holdout_share,
            **(quiet if spec.has_quiet_hours else {}),
            **channel,
        )
        # A fixed salt: with a random one the holdout, and so the run, would differ each time
        # hypothesis replays an example.
        Campaign.objects.filter(pk=campaign.pk).update(salt=f"salt-{len(self.campaigns)}")
        self.campaigns[campaign.pk] = campaign
        audience_ids = {self.pool.customer_ids[index] for index in spec.members}
        self.audiences[campaign.pk] = audience_ids
        opted_out = _opted_out()
        counted = self._counted(self.rows)
        quiet_end = quiet_until(campaign, self.clock)

        campaign_launch(campaign_id=campaign.pk, actor="test", at=self.clock)
        written = campaign_plan(campaign_id=campaign.pk, at=self.clock)
        self.calls += 1

        before = self.rows
        self.rows = rows()
        assert {k: v for k, v in self.rows.items() if k in before} == before
        planned = [row for row in self.rows.values() if row.campaign_id == campaign.pk]
        assert written == len(planned)
        assert sorted(row.customer_id for row in planned) == sorted(audience_ids)
        due_at = quiet_end or self.clock
        for row in planned:
            assert row.first_due_at == due_at, row
            if (row.customer_id, campaign.consent_channel) in opted_out:
                wanted = Expected("suppressed", "opted_out", due_at, None, frozenset())
            elif row.customer_id not in self.pool.reachable and spec.is_wecom:
                wanted = Expected("suppressed", "no_identity", due_at, None, frozenset())
            elif quiet_end is not None:
                wanted = Expected("pending", "quiet_hours", quiet_end, None, frozenset())
            else:
                # The holdout draw is the planner's (its shares are tested in test_planning).
                fresh = dataclasses.replace(
                    row, due_at=due_at, first_due_at=due_at, reason="", rule_id=None
                )
                rules = list(self.active_rules.values())
                wanted = judge(fresh, campaign, rules, counted, opted_out, self.clock)
            if wanted.reason in ("opted_out", "no_identity"):
                assert not row.is_holdout, row
            self._check(row, wanted)
        self._count_reserved(planned)

    def _counted(self, current: dict[int, Row]) -> list[tuple[int, datetime, Campaign]]:
        """(customer, reserved at, campaign) of the sends that count."""
        return [
            (row.customer_id, row.reserved_at, self.campaigns[row.campaign_id])
            for row in current.values()
            if row.status in COUNTED_STATUSES
            and self.campaigns[row.campaign_id].counts_toward_caps
            and row.reserved_at is not None
        ]

    def _check(self, row: Row, wanted: Expected) -> None:
        assert (row.status, row.due_at, row.reserved_at) == (
            wanted.status,
            wanted.due_at,
            wanted.reserved_at,
        ), (row, wanted)
        if wanted.rule_ids:
            assert row.rule_id in wanted.rule_ids, (row, wanted)
        else:
            assert row.rule_id is None, (row, wanted)
        reason = wanted.reason
        if reason is None:
            assert row.rule_id is not None
            exceeded = self.active_rules[row.rule_id].on_hit == "defer"
            reason = "cap_delay_exceeded" if exceeded else "capped"
        assert row.reason == reason, (row, wanted)

    def _count_reserved(self, judged: list[Row]) -> None:
        for row in judged:
            if row.status == "reserved":
                self.reserved_by[row.id] = self.calls

    @rule(
        how=st.sampled_from(["seconds", "edge", "edge"]),
        seconds=st.one_of(
            st.sampled_from([1, 60, 3600, 5 * 3600, 86399, 86400]),
            st.integers(1, 6 * 3600),
        ),
        edge=st.integers(0, 3),
        is_just_before=st.booleans(),
        consent=st.none()
        | st.tuples(
            st.integers(0, POOL_SIZE - 1),
            st.sampled_from(["sms", "wecom"]),
            st.sampled_from(["opted_out", "opted_out", "opted_in"]),
        ),
    )
    def wait(
        self,
        how: str,
        seconds: int,
        edge: int,
        is_just_before: bool,
        consent: tuple[int, str, str] | None,
    ) -> None:
        """Some seconds; or to one of the next instants where a window changes (a send
        leaves a rolling window, a calendar window begins), or a second before it. Then,
        maybe, a customer changes their mind on a channel."""
        edges = self._window_edges()
        if how == "seconds" or not edges:
            self.clock += timedelta(seconds=seconds)
        else:
            target = edges[min(edge, len(edges) - 1)]
            self.clock = max(self.clock, target - timedelta(seconds=int(is_just_before)))
        if consent is not None:
            member, channel, status = consent
            consent_record(
                customer_id=self.pool.customer_ids[member],
                channel=channel,
                status=status,
                source="test",
                occurred_at=self.clock,
                actor="test",
            )

    def _window_edges(self) -> list[datetime]:
        edges: set[datetime] = set()
        for frequency_rule in self.active_rules.values():
            if frequency_rule.window_kind == "calendar":
                edges.add(window_frees(frequency_rule, [], self.clock))
                continue
            assert frequency_rule.window_hours is not None
            length = timedelta(hours=frequency_rule.window_hours)
            edges.update(
                row.reserved_at + length
                for row in self.rows.values()
                if row.status in COUNTED_STATUSES and row.reserved_at is not None
            )
        return sorted(edge for edge in edges if edge > self.clock)

    def _due_campaigns(self) -> list[int]:
        return sorted(
            {
                row.campaign_id
                for row in self.rows.values()
                if row.status == "pending" and row.due_at <= self.clock
            }
        )

    def _next_deferral(self) -> datetime | None:
        later = [
            row.due_at
            for row in self.rows.values()
            if row.status == "pending" and row.due_at > self.clock
        ]
        return min(later, default=None)

    @precondition(lambda self: bool(self._due_campaigns()))
    @rule(data=st.data())
    def reserve(self, data: st.DataObject) -> None:
        """A batch of one campaign with sends due."""
        self._reserve(data.draw(st.sampled_from(self._due_campaigns())))

    @precondition(lambda self: bool(self._due_campaigns()))
    @rule(data=st.data())
    def reserve_every_due_campaign(self, data: st.DataObject) -> None:
        """A batch of each campaign with sends due, in a random order, at the same instant."""
        for campaign_id in data.draw(st.permutations(self._due_campaigns())):
            self._reserve(campaign_id)

    @precondition(lambda self: self._next_deferral() is not None)
    @rule(data=st.data())
    def reserve_at_the_next_deferral(self, data: st.DataObject) -> None:
        """The clock moves to when the next deferred send is due (where a window frees up
        exactly), and each campaign with sends due runs a batch then."""
        self.clock = self._next_deferral() or self.clock
        self.reserve_every_due_campaign(data)

    def _reserve(self, campaign_id: int) -> None:
        """Run a batch and compare every delivery with what `judge` says of it (in quiet
        hours: every due delivery waits for their end)."""
        campaign = self.campaigns[campaign_id]
        before = rows()
        assert before == self.rows
        rules = list(self.active_rules.values())
        counted = self._counted(before)
        opted_out = _opted_out()
        quiet_end = quiet_until(campaign, self.clock)
        due = [
            row
            for row in before.values()
            if row.campaign_id == campaign.pk
            and row.status == "pending"
            and row.due_at <= self.clock
        ]
        expected = {
            row.id: judge(row, campaign, rules, counted, opted_out, self.clock)
            if quiet_end is None
            else Expected("pending", "quiet_hours", quiet_end, None, frozenset())
            for row in due
        }

        outcome = deliveries_reserve_batch(campaign_id=campaign.pk, at=self.clock)
        self.calls += 1

        self.rows = after = rows()
        assert after.keys() == before.keys()
        for delivery_id, row in after.items():
            if delivery_id not in expected:
                assert row == before[delivery_id]
                continue
            assert (row.first_due_at, row.is_holdout) == (
                before[delivery_id].first_due_at,
                before[delivery_id].is_holdout,
            )
            self._check(row, expected[delivery_id])
        judged = [after[delivery_id] for delivery_id in expected]
        if quiet_end is not None:
            assert (outcome.reserved_ids, outcome.counts) == ([], {"quiet_hours": len(judged)})
            return
        counts: dict[str, int] = {}
        for row in judged:
            key = row.status if row.status in ("reserved", "held_out") else row.reason
            counts[key] = counts.get(key, 0) + 1
        reserved = sorted(row.id for row in judged if row.status == "reserved")
        assert (sorted(outcome.reserved_ids), outcome.counts) == (reserved, counts)
        assert outcome.is_exhausted
        self._count_reserved(judged)

    @invariant()
    def each_customer_has_one_delivery_per_campaign_and_every_send_was_reserved(self) -> None:
        current = rows()
        counted = {row.id for row in current.values() if row.status in COUNTED_STATUSES}
        assert counted == set(self.reserved_by)
        planned: dict[int, list[int]] = {}
        for row in current.values():
            planned.setdefault(row.campaign_id, []).append(row.customer_id)
        assert {campaign_id: sorted(ids) for campaign_id, ids in planned.items()} == {
            campaign_id: sorted(ids) for campaign_id, ids in self.audiences.items()
        }

    @invariant()
    def no_send_went_past_a_cap(self) -> None:
        """When a campaign respecting caps reserved a send, fewer than max_count sends that
        count were in each rule's window (made in earlier steps); so, over the sends of the
        campaigns that respect and count, no window of a rule in force from the start ever
        holds more than max_count. (Campaigns ignoring caps may overfill a window, and sends
        made before a rule existed may exceed it.)"""
        sends = [
            (row, self.campaigns[row.campaign_id])
            for row in rows().values()
            if row.status in COUNTED_STATUSES
        ]
        for frequency_rule in self.active_rules.values():
            since = self.rule_since[frequency_rule.pk]
            in_scope = [(row, c) for row, c in sends if applies(frequency_rule, c)]
            for row, campaign in in_scope:
                if not campaign.respects_caps or self.reserved_by[row.id] <= since:
                    continue
                assert row.reserved_at is not None
                earlier = [
                    other
                    for other, other_campaign in in_scope
                    if other.customer_id == row.customer_id
                    and other_campaign.counts_toward_caps
                    and self.reserved_by[other.id] < self.reserved_by[row.id]
                    and other.reserved_at is not None
                    and window_holds(frequency_rule, other.reserved_at, row.reserved_at)
                ]
                assert len(earlier) < frequency_rule.max_count, (frequency_rule, row, earlier)
                if since > 0 or not campaign.counts_toward_caps:
                    continue
                in_window = [
                    other
                    for other, other_campaign in in_scope
                    if other.customer_id == row.customer_id
                    and other_campaign.respects_caps
                    and other_campaign.counts_toward_caps
                    and other.reserved_at is not None
                    and window_holds(frequency_rule, other.reserved_at, row.reserved_at)
                ]
                assert len(in_window) <= frequency_rule.max_count, (frequency_rule, row)


def _opted_out() -> set[tuple[int, str]]:
    return set(Consent.objects.filter(status="opted_out").values_list("customer_id", "channel"))


def test_reservations_follow_the_rules_and_never_exceed_a_cap() -> None:
    customers = [*wecom_customers(POOL_SIZE - 1), CustomerFactory()]
    segment_ids = {}
    for size in range(1, POOL_SIZE + 1):
        for members in itertools.combinations(range(POOL_SIZE), size):
            chosen = [customers[index] for index in members]
            segment_ids[frozenset(members)] = audience(chosen, name=f"pool {members}").pk
    ReservationMachine.pool = Pool(
        customer_ids=[customer.pk for customer in customers],
        reachable={customer.pk for customer in customers[:-1]},
        segment_ids=segment_ids,
    )
    run_state_machine_as_test(
        ReservationMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            database=None,  # nothing written to the working tree
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
