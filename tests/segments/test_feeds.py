"""The feeds read by id cursor under concurrent writers: a reader following a feed as the README
says never moves past an id that a transaction still in flight commits later."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from segments.feeds import Feed, feed_end
from segments.models import LifecycleTransition, SegmentMembershipEvent
from segments.services.segments import segment_create, segment_members_change
from tests.factories import CustomerFactory
from tests.segments.feed_support import HeldOpen, RunWithFirstBatchHeld
from tests.segments.recompute_support import buyer

pytestmark = pytest.mark.django_db(transaction=True)

Client = Callable[..., APIClient]


def poll(client: APIClient, after_id: int) -> list[dict[str, Any]]:
    """One poll of the transition feed as the README says: `after_id` set to the last id seen,
    every page of the answer followed."""
    url: str | None = f"/api/v1/lifecycle-transitions?after_id={after_id}&page_size=2"
    seen: list[dict[str, Any]] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        seen.extend(body["results"])
        url = body["next"]
    return seen


def as_rows(transitions: list[dict[str, Any]]) -> list[tuple[int, int, str, str]]:
    return [(t["id"], t["customer_id"], t["from_state"], t["to_state"]) for t in transitions]


def stored_transitions() -> list[tuple[int, int, str, str]]:
    return list(
        LifecycleTransition.objects.order_by("id").values_list(
            "id", "customer_id", "from_state", "to_state"
        )
    )


def test_a_poller_misses_no_transition_of_a_batch_committing_after_a_later_one(
    api_client_with_scopes: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A full run's first batch draws the lower transition ids but commits after the second:
    a poll in between returns nothing past the first batch's ids, and the next poll returns
    every transition, each once, in id order."""
    customers = [buyer(recency=days, orders=1, spend=100) for days in (1, 2, 100, 200)]
    client = api_client_with_scopes("segments:read")
    run = RunWithFirstBatchHeld(
        customer_ids=[c.pk for c in customers], monkeypatch=monkeypatch, settings=settings
    )

    run.start()
    during = poll(client, after_id=0)
    last_seen = max((t["id"] for t in during), default=0)
    run.release()
    after = poll(client, after_id=last_seen)

    stored = stored_transitions()
    by_customer = {customer_id: id_ for id_, customer_id, _from, _to in stored}
    # The gap the run opened: the held batch's ids lie below the committed batch's.
    assert max(by_customer[c] for c in run.first_batch) < min(
        by_customer[c] for c in run.second_batch
    )
    assert as_rows(during + after) == stored  # nothing skipped, nothing twice, in id order
    assert during == []  # the poll stopped below the held batch's ids
    assert [(customer_id, to) for _id, customer_id, _from, to in stored] == [
        (customers[0].pk, "new"),
        (customers[1].pk, "new"),
        (customers[2].pk, "sleeping"),
        (customers[3].pk, "churned"),
    ]


def test_the_feed_end_waits_for_an_open_writer_then_reaches_the_last_id() -> None:
    """Membership events: while a refresh holding the lower ids is open, the feed ends below
    them, though a later refresh's events are visible; once it commits, at the last id."""
    first, second = CustomerFactory(), CustomerFactory()
    held_segment = segment_create(name="held", kind="static", actor="test")
    other_segment = segment_create(name="other", kind="static", actor="test")
    before = feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS)
    writer = HeldOpen(
        lambda: segment_members_change(segment_id=held_segment.pk, add=[first.pk], actor="test")
    )

    writer.start()
    segment_members_change(segment_id=other_segment.pk, add=[second.pk], actor="test")
    visible = list(SegmentMembershipEvent.objects.values_list("id", "customer_id"))
    end_while_open = feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS)
    writer.commit()

    events = list(SegmentMembershipEvent.objects.order_by("id").values_list("id", "customer_id"))
    assert [customer_id for _id, customer_id in events] == [first.pk, second.pk]
    assert visible == [events[1]]
    assert end_while_open == before < events[0][0]
    assert feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS) == events[1][0]


def test_the_feed_sequences_are_those_of_the_tables() -> None:
    """The feeds read the sequences their tables' ids come from, one id at a time."""
    with connection.cursor() as cursor:
        for feed, table in (
            (Feed.LIFECYCLE_TRANSITIONS, "segments_lifecycletransition"),
            (Feed.SEGMENT_MEMBERSHIP_EVENTS, "segments_segmentmembershipevent"),
        ):
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'id'), (SELECT cache_size FROM pg_sequences "
                "WHERE sequencename = %s)",
                [table, feed.sequence],
            )
            assert cursor.fetchone() == (f"public.{feed.sequence}", 1)


def test_a_feed_is_not_read_under_an_older_snapshot() -> None:
    """Under REPEATABLE READ the transaction's snapshot may predate the registrations read,
    so the feed's end is refused there."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(RuntimeError, match="READ COMMITTED, not repeatable read"):
            feed_end(Feed.LIFECYCLE_TRANSITIONS)


def test_a_poller_of_the_membership_events_waits_for_the_oldest_open_writer() -> None:
    """Three refreshes hold events open and commit out of order (the second, the first, the
    third): a poller moving its cursor to the feed's end after each read gets nothing while
    the first is open, then the first two, then the third: each event once, in id order."""
    customers = CustomerFactory.create_batch(3)
    segments = [segment_create(name=f"s{n}", kind="static", actor="test") for n in range(3)]
    cursor = feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS)

    def poll() -> list[int]:
        nonlocal cursor
        end = feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS)
        read = list(
            SegmentMembershipEvent.objects.filter(id__gt=cursor, id__lte=end)
            .order_by("id")
            .values_list("customer_id", flat=True)
        )
        cursor = end
        return read

    writers = [
        HeldOpen(
            lambda segment=segment, customer=customer: segment_members_change(
                segment_id=segment.pk, add=[customer.pk], actor="test"
            )
        )
        for segment, customer in zip(segments, customers, strict=True)
    ]
    for writer in writers:
        writer.start()  # in this order: each draws higher ids than the one before
    reads = []
    for position in (1, 0, 2):
        writers[position].commit()
        reads.append(poll())

    first, second, third = (c.pk for c in customers)
    assert reads == [[], [first, second], [third]]
    assert cursor == SegmentMembershipEvent.objects.order_by("-id").values_list("id").first()[0]
