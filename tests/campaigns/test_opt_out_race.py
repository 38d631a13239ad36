"""An opt-out that arrives after a campaign was planned still stops the send: reservation
checks consent again, and so does every attempt of a call, right before the channel's call.
Raced for real: opt-outs and calls on threads, each with its own PostgreSQL connection."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from campaigns.channels import wecom
from campaigns.models import Campaign, ChannelSend, Delivery, DeliveryReason, DeliveryStatus
from campaigns.services import dispatch
from campaigns.services.campaigns import VariantInput, campaign_launch, campaign_plan
from campaigns.services.dispatch import channel_sends_run
from campaigns.services.reservation import deliveries_reserve_batch
from crm.models import Consent, Customer, StaffMember
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import (
    audience,
    calls_of,
    make_campaign,
    opt_out,
    statuses,
    wecom_customers,
    wecom_received,
)
from tests.factories import StaffMemberFactory
from tests.support import run_together


def reserve_all(campaign: Campaign) -> list[int]:
    """Reserve whatever is due, batch after batch; answer every reserved delivery's id."""
    while not deliveries_reserve_batch(campaign_id=campaign.pk).is_exhausted:
        pass
    return list(
        campaign.deliveries.filter(status=DeliveryStatus.RESERVED)
        .order_by("id")
        .values_list("id", flat=True)
    )


def opted_out_ids() -> set[int]:
    return set(
        Consent.objects.filter(channel="wecom", status="opted_out").values_list(
            "customer_id", flat=True
        )
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("waits", "overrides"),
    [
        # Planning reserves a send that may go at once: its call's first attempt must see it.
        (DeliveryStatus.RESERVED, {}),
        # A throttled campaign plans pending sends: the reservation must see it.
        (DeliveryStatus.PENDING, {"throttle_per_minute": 100}),
    ],
    ids=["while-reserved", "while-pending"],
)
def test_an_opt_out_after_planning_suppresses_the_send(
    waits: str, overrides: dict[str, Any], fake: FakeWeCom
) -> None:
    customers = wecom_customers(3)
    leaving = customers[1]
    campaign = make_campaign(audience(customers), **overrides)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    if waits == DeliveryStatus.RESERVED:
        reserve_all(campaign)
    assert statuses(campaign) == {waits: 3}

    opt_out(leaving)
    reserve_all(campaign)
    channel_sends_run(channel_send_ids=calls_of(campaign))

    delivery = Delivery.objects.get(campaign=campaign, customer=leaving)
    assert (delivery.status, delivery.reason) == (
        DeliveryStatus.SUPPRESSED,
        DeliveryReason.OPTED_OUT,
    )
    assert delivery.channel_send_id is None and delivery.sent_at is None
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 2, DeliveryStatus.SUPPRESSED: 1}
    assert wecom_received(fake) == sorted(f"ext-{c.pk}" for c in customers if c != leaving)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("enqueued")  # this test drives every step itself
def test_an_opt_out_committed_before_the_first_attempt_is_never_sent(
    fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opt-outs and calls race on threads. Each call's first attempt notes which opt-outs had
    committed before it began (read on its own connection just before): none of those
    customers may be sent; and a customer whose opt-out had not committed when the channel
    read consent (noted while it holds its customers, see `channel_calls.consent_hold`) must be
    sent. A text with a variable makes one call per customer."""
    owners: list[StaffMember] = StaffMemberFactory.create_batch(3)
    customers = [c for owner in owners for c in wecom_customers(40, owner=owner)]
    campaign = make_campaign(
        audience(customers), variants=[VariantInput(name="A", content="{{ display_name }}，新品")]
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    reserved = reserve_all(campaign)
    assert len(reserved) == 120
    by_delivery = dict(campaign.deliveries.values_list("id", "customer_id"))
    by_call = dict(campaign.deliveries.values_list("channel_send_id", "id"))
    calls = calls_of(campaign)
    assert sorted(by_call) == calls
    # Opted out after the reservation: only the attempt's check stands between them and the send.
    for customer in customers[::4]:
        opt_out(customer)
    racing = customers[1::4]  # opted out while the calls run

    attempts: list[tuple[Sequence[int], set[int], set[int]]] = []
    at_consent_read: dict[int, set[int]] = {}  # by delivery id
    consent_hold = wecom.consent_hold

    @contextmanager
    def noted_hold(
        *, send: ChannelSend, deliveries: list[dict[str, Any]]
    ) -> Iterator[list[dict[str, Any]]]:
        with consent_hold(send=send, deliveries=deliveries) as allowed:
            noted = opted_out_ids()
            at_consent_read.update({row["id"]: noted for row in deliveries})
            yield allowed

    monkeypatch.setattr(wecom, "consent_hold", noted_hold)
    attempt_begin = dispatch.attempt_begin

    def noted_attempt(*, channel_send_id: int) -> dispatch.Attempt | None:
        before = opted_out_ids()
        attempt = attempt_begin(channel_send_id=channel_send_id)
        attempts.append(([by_call[channel_send_id]], before, set()))
        return attempt

    monkeypatch.setattr(dispatch, "attempt_begin", noted_attempt)

    def caller(call_ids: list[int]) -> Callable[[], None]:
        def work() -> None:
            channel_sends_run(channel_send_ids=call_ids)

        return work

    def opt_outs(leavers: list[Customer]) -> Callable[[], None]:
        def work() -> None:
            for customer in leavers:
                opt_out(customer)

        return work

    callers = [caller(calls[i::3]) for i in range(3)]
    for error in run_together(*callers, *(opt_outs(racing[i::2]) for i in range(2))):
        raise error

    assert sorted(i for ids, _before, _after in attempts for i in ids) == reserved
    sent = set(
        campaign.deliveries.filter(status=DeliveryStatus.SUBMITTED).values_list(
            "customer_id", flat=True
        )
    )
    attempts = [(ids, before, at_consent_read[ids[0]]) for ids, before, _ in attempts]
    for delivery_ids, before, after in attempts:
        chunk_customers = {by_delivery[i] for i in delivery_ids}
        assert not (chunk_customers & before & sent), "opted out before the attempt, yet sent"
        assert chunk_customers - after <= sent, "not opted out at the attempt, yet not sent"
    # The fake got exactly the customers sent, once each; every other one was suppressed as
    # opted out, whatever the order of the race.
    assert wecom_received(fake) == sorted(f"ext-{pk}" for pk in sent)
    suppressed = {customer.pk for customer in customers} - sent
    assert set(
        campaign.deliveries.exclude(status=DeliveryStatus.SUBMITTED).values_list(
            "customer_id", "status", "reason"
        )
    ) == {(pk, DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT) for pk in suppressed}
    assert {c.pk for c in customers[::4]} <= suppressed
    assert suppressed <= {c.pk for c in customers[::4] + racing}
