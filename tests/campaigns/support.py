"""Helpers of the campaign tests: customers reachable on WeCom or in a group chat, opting out, a
static audience segment, campaigns made through the service (as an operator makes them, for
tests that launch them) or through the admin's add form, what became of their deliveries, a
report's worth of ledger, and a webhook receiver over real HTTP."""

import json
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    Campaign,
    Channel,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.attribution import conversions_attribute
from campaigns.services.campaigns import CampaignInput, VariantInput, campaign_create
from crm.models import Customer, Group, IdentityProvider, StaffMember
from crm.services.consents import consent_record
from devstack.wecom_fake import FakeWeCom
from segments.models import Segment
from segments.services.segments import segment_create, segment_members_change
from tests.factories import (
    CustomerFactory,
    DeliveryFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    LinkClickFactory,
    OrderFactory,
    StaffMemberFactory,
)
from tests.support import form_data

CORP_ID = "corp1"  # the factories' WeCom namespace
WECOM_SECRET = "fake-secret"  # the corp's secret at the WeCom fake (tests/conftest.py)
# A public receiver's URL: tests/conftest.py resolves example.com names without the network.
HOOK_URL = "https://hooks.example.com/crm"


def wecom_customers(count: int, *, owner: StaffMember | None = None) -> list[Customer]:
    """Customers with a WeCom external_userid (ext-<id>), owned by `owner` (one is made)."""
    owner = owner or StaffMemberFactory()
    customers = CustomerFactory.create_batch(count, owner=owner)
    for customer in customers:
        IdentityFactory(
            customer=customer, provider=IdentityProvider.WECOM, raw_value=f"ext-{customer.pk}"
        )
    return customers


def wecom_received(fake: FakeWeCom) -> list[str]:
    """Every external_userid the WeCom fake was asked to message, once per time it was asked,
    sorted."""
    return sorted(
        userid for message in fake.messages() for userid in message["request"]["external_userid"]
    )


def group_chat(owner: StaffMember | None, members: list[Customer]) -> Group:
    """A WeCom group chat owned by `owner`, its members in it since three days ago."""
    group = GroupFactory(owner=owner)
    for customer in members:
        GroupMembershipFactory(
            group=group, customer=customer, joined_at=timezone.now() - timedelta(days=3)
        )
    return group


def opt_out(customer: Customer, *, channel: str = "wecom", at: datetime | None = None) -> None:
    """The customer opts out of messages on `channel`, at `at` (now unless given)."""
    consent_record(
        customer_id=customer.pk,
        channel=channel,
        status="opted_out",
        source="test",
        occurred_at=at or timezone.now(),
        actor="test",
    )


def audience(customers: list[Customer], name: str = "audience") -> Segment:
    segment = segment_create(name=name, kind="static", actor="test")
    segment_members_change(segment_id=segment.pk, add=[c.pk for c in customers], actor="test")
    return segment


def make_campaign(segment: Segment | None = None, **overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "name": f"campaign-{Campaign.objects.count() + 1}",
        "channel": Channel.WECOM_CUSTOMER,
        "variants": [VariantInput(name="A", content="新品上市")],
        "include_segment_ids": [segment.pk] if segment else [],
        # Without a segment: everyone (a rule every customer matches).
        "extra_rule": None if segment else {"field": "member_level", "op": "gte", "value": 0},
        "holdout_share": Decimal("0"),
        "quiet_hours_start": None,
        "quiet_hours_end": None,
        **overrides,
    }
    return campaign_create(data=CampaignInput(**fields), actor="test")


def webhook_campaign(
    segment: Segment | None = None, url: str = HOOK_URL, **overrides: Any
) -> Campaign:
    """A campaign posting to `url`, honouring SMS consent unless told otherwise: it needs no
    identity, so every member of its audience is reachable."""
    fields = {"channel": Channel.WEBHOOK, "webhook_url": url, "consent_channel": "sms"}
    return make_campaign(segment, **{**fields, **overrides})


def campaign_body(segment: Segment, **overrides: Any) -> dict[str, Any]:
    """The body of an API request creating a WeCom campaign with one message to `segment`,
    `overrides` applied."""
    body: dict[str, Any] = {
        "name": "春季上新",
        "channel": "wecom_customer",
        "content": "{{ display_name }}，春季新品上市",
        "include_segment_ids": [segment.pk],
    }
    body.update(overrides)
    return body


def campaign_add_posted(client: Client, **fields: Any) -> HttpResponse:
    """The admin's add-campaign form posted as its page would post it, with `fields` filled in
    (the variant rows by their prefixed names: "variants-0-content")."""
    url = reverse("admin:campaigns_campaign_add")
    response: HttpResponse = client.post(url, form_data(client.get(url), **fields))
    return response


def statuses(campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(campaign=campaign).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def outcomes(campaign: Campaign) -> dict[int, tuple[str, str]]:
    """Each customer's delivery of the campaign: (status, reason)."""
    return {
        customer_id: (status, reason)
        for customer_id, status, reason in Delivery.objects.filter(campaign=campaign).values_list(
            "customer_id", "status", "reason"
        )
    }


def has_nothing_in_flight(campaign: Campaign) -> bool:
    """Whether the campaign is planned and none of its deliveries waits or is reserved."""
    is_planned = Campaign.objects.filter(pk=campaign.pk, planned_at__isnull=False).exists()
    in_flight = (DeliveryStatus.PENDING, DeliveryStatus.RESERVED)
    return is_planned and not campaign.deliveries.filter(status__in=in_flight).exists()


def calls_of(campaign: Campaign) -> list[int]:
    """The ids of the campaign's calls still to make, as the reservation queued them."""
    return list(
        ChannelSend.objects.filter(campaign=campaign, state=ChannelSendState.REQUESTED)
        .order_by("id")
        .values_list("id", flat=True)
    )


@dataclass(frozen=True)
class ReportCase:
    sent_a: list[Delivery]
    sent_b: list[Delivery]
    held: list[Delivery]


def report_case(campaign: Campaign, customers: list[Customer], *, at: datetime) -> ReportCase:
    """The ledger of a campaign with variants A and B, one customer a minute from `at`: two
    sent with A (one converts, 100), one sent with B (converts twice, 60 each), one B failed,
    one A opted out, one A waiting for quiet hours; two held out (one converts, 30), one of the
    holdout capped; three clicks, one of them shared. Needs nine customers."""
    a, b = campaign.variants.order_by("name")

    def delivery(i: int, status: str, **fields: Any) -> Delivery:
        return DeliveryFactory(
            campaign=campaign,
            customer=customers[i],
            status=status,
            at=at + timedelta(minutes=i),
            **fields,
        )

    sent_a = [delivery(0, "sent", variant=a), delivery(1, "sent", variant=a)]
    sent_b = [delivery(2, "sent", variant=b)]
    delivery(3, "failed", variant=b, reason=DeliveryReason.PLATFORM_CAP)
    delivery(4, "suppressed", variant=a, reason=DeliveryReason.OPTED_OUT)
    delivery(5, "pending", variant=a, reason=DeliveryReason.QUIET_HOURS)
    held = [delivery(6, "held_out", is_holdout=True), delivery(7, "held_out", is_holdout=True)]
    delivery(8, "suppressed", is_holdout=True, reason=DeliveryReason.CAPPED)
    OrderFactory(customer=customers[0], paid_at=at + timedelta(days=1), total_amount=100)
    OrderFactory(customer=customers[2], paid_at=at + timedelta(days=1), total_amount=60)
    OrderFactory(customer=customers[2], paid_at=at + timedelta(days=2), total_amount=60)
    OrderFactory(customer=customers[6], paid_at=at + timedelta(days=1), total_amount=30)
    conversions_attribute(customer_ids=[c.pk for c in customers])
    LinkClickFactory(campaign=campaign, variant=a, delivery=sent_a[1])
    LinkClickFactory(campaign=campaign, variant=a, delivery=sent_a[1])
    LinkClickFactory(campaign=campaign, variant=b)
    return ReportCase(sent_a=sent_a, sent_b=sent_b, held=held)


@dataclass
class Post:
    """A post as the receiver got it; `taken_at` (time.monotonic()) is when it was let through,
    after any hold (None while it is held)."""

    path: str
    headers: dict[str, str]
    body: bytes
    taken_at: float | None = None

    @property
    def customer_id(self) -> int:
        return int(json.loads(self.body)["customer_id"])


class WebhookReceiver:
    """A webhook receiver on 127.0.0.1 over real HTTP (or HTTPS, given `tls`), running while
    used as a context manager. Every post is listed in `received` as it arrives. It answers
    the next status queued for its customer in `answers_for`, else the next in `answers`, else
    `status` (with a Location header when `location` is set). With `is_holding`, the first post
    waits after it arrived (`arrived` is set) until `release` is set."""

    def __init__(
        self, *, status: int = 200, location: str = "", tls: ssl.SSLContext | None = None
    ) -> None:
        self.status = status
        self.location = location
        self.answers: list[int] = []
        self.answers_for: dict[int, list[int]] = {}
        self.received: list[Post] = []
        self.is_holding = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def posted_customers(self) -> list[int]:
        return [post.customer_id for post in self.received]

    def posted(self) -> list[tuple[int, float | None]]:
        """(customer id, when the post was let through) of every post, in arrival order."""
        return [(post.customer_id, post.taken_at) for post in self.received]

    def __enter__(self) -> "WebhookReceiver":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _take(self, post: Post) -> tuple[int, str]:
        """Record the post, hold it when it is the first and holding is asked for, and answer
        its status and Location header."""
        with self._lock:
            self.received.append(post)
            is_held = self.is_holding and not self.arrived.is_set()
            self.arrived.set()
        if is_held:
            self.release.wait(timeout=60)
        post.taken_at = time.monotonic()
        with self._lock:
            queued = self.answers_for.get(_customer_id(post.body), [])
            if queued:
                return queued.pop(0), self.location
            return (self.answers.pop(0) if self.answers else self.status), self.location

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, location = receiver._take(
                    Post(path=self.path, headers=dict(self.headers.items()), body=body)
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _customer_id(body: bytes) -> int | None:
    try:
        return int(json.loads(body)["customer_id"])
    except (ValueError, KeyError, TypeError):
        return None
