"""Where a webhook may post: URLs inside the network, with credentials or another scheme are
refused when a campaign is saved (service, API, admin) and again before its posts, after the
host is resolved anew (DNS rebinding); the posts go to the address checked; redirects are not
followed; WEBHOOK_ALLOW_PRIVATE_NETWORKS lets tests and local development post to loopback."""

import datetime
import functools
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import Client, override_settings
from django.utils import translation
from rest_framework.test import APIClient

from campaigns.channels import webhook, webhook_url
from campaigns.models import (
    Campaign,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.campaigns import campaign_launch, campaign_plan, campaign_update
from campaigns.services.dispatch import channel_sends_run
from core.errors import ValidationFailed
from segments.models import Segment
from tests.campaigns.support import (
    WebhookReceiver,
    calls_of,
    campaign_add_posted,
    webhook_campaign,
)
from tests.conftest import PUBLIC_TEST_ADDRESS

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://hooks.example.com/crm"

# (URL, the reason given for it.)
INTERNAL_NAME = "The host name belongs to an internal network."
CREDENTIALS = "The URL may not carry a user name or password."
SCHEME = "Only http and https URLs are allowed."


def inside(address: str) -> str:
    return f"The host is inside a private or reserved network ({address})."


REFUSED_URLS = [
    ("http://127.0.0.1:9/", inside("127.0.0.1")),  # loopback
    ("http://127.8.9.10/", inside("127.8.9.10")),
    ("http://localhost:6379/", INTERNAL_NAME),
    ("http://LOCALHOST./", INTERNAL_NAME),
    ("http://[::1]:5432/", inside("::1")),
    ("http://169.254.169.254/latest/meta-data/", inside("169.254.169.254")),  # link-local
    ("http://metadata.google.internal/computeMetadata/v1/", INTERNAL_NAME),
    ("http://db.internal/", INTERNAL_NAME),
    ("http://printer.local/", INTERNAL_NAME),
    ("http://redis:6379/", INTERNAL_NAME),  # a single label: the local search domain's
    ("http://2130706433/", INTERNAL_NAME),  # 127.0.0.1 as one decimal number
    ("http://10.1.2.3/", inside("10.1.2.3")),  # private
    ("http://172.16.0.1/", inside("172.16.0.1")),
    ("http://192.168.1.1/", inside("192.168.1.1")),
    ("http://100.64.0.1/", inside("100.64.0.1")),  # shared address space (CGNAT)
    ("http://0.0.0.0/", inside("0.0.0.0")),  # noqa: S104 - unspecified
    ("http://0.1.2.3/", inside("0.1.2.3")),  # "this network"
    ("http://224.0.0.1/", inside("224.0.0.1")),  # multicast
    ("http://239.255.255.250/", inside("239.255.255.250")),
    ("http://240.0.0.1/", inside("240.0.0.1")),  # reserved
    ("http://255.255.255.255/", inside("255.255.255.255")),
    ("http://[::]/", inside("::")),
    ("http://[::ffff:127.0.0.1]/", inside("::ffff:7f00:1")),  # IPv4-mapped IPv6
    ("http://[::ffff:a9fe:a9fe]/", inside("::ffff:a9fe:a9fe")),
    ("http://[fe80::1]/", inside("fe80::1")),  # IPv6 link-local
    ("http://[fc00::1]/", inside("fc00::1")),  # IPv6 unique local
    ("http://[ff02::1]/", inside("ff02::1")),  # IPv6 multicast
    ("http://[2002:a00:1::]/", inside("2002:a00:1::")),  # 6to4 of 10.0.0.1
    ("http://[64:ff9b::7f00:1]/", inside("64:ff9b::7f00:1")),  # NAT64 of 127.0.0.1
    ("http://user:pass@hooks.example.com/", CREDENTIALS),
    ("http://token@hooks.example.com/", CREDENTIALS),
    ("ftp://hooks.example.com/", SCHEME),
    ("file:///etc/passwd", SCHEME),
    ("gopher://hooks.example.com:6379/_INFO", SCHEME),
]


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The service's reasons in English (the ledger's are in the business language whatever
    is active)."""
    with translation.override("en"):
        yield


@pytest.fixture
def resolve_to(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`resolve_to(name, [addresses])`: what the host name resolves to from now on (the
    other names as before)."""
    answers: dict[str, list[str]] = {}
    resolve = webhook_url.resolve_host

    def fake(host: str, port: int) -> list[str]:
        return answers[host] if host in answers else resolve(host, port)

    monkeypatch.setattr(webhook_url, "resolve_host", fake)

    def set_answer(host: str, addresses: list[str]) -> None:
        answers[host] = addresses

    return set_answer


# --- When a campaign is saved ---------------------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_the_service_refuses_urls_inside_the_network(
    webhook_audience: Segment, url: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        webhook_campaign(webhook_audience, url)

    assert refused.value.code == "webhook_url_not_allowed"
    assert refused.value.detail == {"webhook_url": [reason]}
    assert not Campaign.objects.exists()


def test_every_address_the_host_resolves_to_is_checked(
    webhook_audience: Segment, resolve_to: Callable[..., None]
) -> None:
    resolve_to("mixed.example.com", [PUBLIC_TEST_ADDRESS, "10.0.0.7"])

    with pytest.raises(ValidationFailed) as refused:
        webhook_campaign(webhook_audience, "https://mixed.example.com/hook")

    assert refused.value.detail == {"webhook_url": [inside("10.0.0.7")]}
    assert not Campaign.objects.exists()


def test_a_host_that_does_not_resolve_is_refused(webhook_audience: Segment) -> None:
    with pytest.raises(ValidationFailed) as refused:
        webhook_campaign(webhook_audience, "https://hooks.nowhere.test/hook")

    assert refused.value.code == "webhook_url_not_allowed"
    assert refused.value.detail == {"webhook_url": ["The host name does not resolve."]}
    assert not Campaign.objects.exists()


def test_a_change_to_an_internal_url_is_refused_and_nothing_changes(
    webhook_audience: Segment,
) -> None:
    campaign = webhook_campaign(webhook_audience, PUBLIC_URL)

    with pytest.raises(ValidationFailed) as refused:
        campaign_update(
            campaign_id=campaign.pk,
            actor="test",
            changes={"webhook_url": "http://169.254.169.254/latest/meta-data/"},
        )

    assert refused.value.code == "webhook_url_not_allowed"
    campaign.refresh_from_db()
    assert campaign.webhook_url == PUBLIC_URL


def test_a_change_that_leaves_the_url_alone_does_not_look_its_host_up(
    webhook_audience: Segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host is looked up when the URL (or the channel) changes, not on every change: a
    DNS hiccup does not refuse a new name, and no lookup waits under the campaign's lock. The
    URL is checked again before each run of posts all the same."""
    campaign = webhook_campaign(webhook_audience, PUBLIC_URL)

    def unreachable(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(webhook_url, "resolve_host", unreachable)
    campaign_update(campaign_id=campaign.pk, actor="test", changes={"name": "双十二预热"})
    campaign.refresh_from_db()
    assert campaign.name == "双十二预热"
    with pytest.raises(ValidationFailed) as refused:
        campaign_update(
            campaign_id=campaign.pk, actor="test", changes={"webhook_url": PUBLIC_URL + "/v2"}
        )
    assert refused.value.code == "webhook_url_not_allowed"


@override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
def test_the_setting_allows_loopback_but_not_credentials_or_other_schemes(
    webhook_audience: Segment, resolve_to: Callable[..., None]
) -> None:
    resolve_to("localhost", ["127.0.0.1", "::1"])
    campaign = webhook_campaign(webhook_audience, "http://127.0.0.1:9/hook")
    assert campaign.webhook_url == "http://127.0.0.1:9/hook"
    local = webhook_campaign(webhook_audience, "http://localhost:8080/hook", name="local")
    assert local.webhook_url == "http://localhost:8080/hook"

    for url, reason in [
        ("http://user:pass@127.0.0.1:9/", CREDENTIALS),
        ("ftp://127.0.0.1/", SCHEME),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            webhook_campaign(webhook_audience, url, name="refused")
        assert refused.value.detail == {"webhook_url": [reason]}
    assert sorted(Campaign.objects.values_list("name", flat=True)) == ["campaign-1", "local"]


@pytest.fixture
def client(api_client_with_scopes: Callable[..., APIClient]) -> APIClient:
    return api_client_with_scopes("campaigns:read", "campaigns:write")


# Those the API's URL field refuses already, as malformed, are left out.
MALFORMED = {"http://LOCALHOST./", "http://redis:6379/", "http://2130706433/"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (url, reason)
        for url, reason in REFUSED_URLS
        if url not in MALFORMED and not url.startswith(("file", "gopher"))
    ],
)
def test_the_api_refuses_urls_inside_the_network(
    client: APIClient, webhook_audience: Segment, url: str, reason: str
) -> None:
    response = client.post(
        "/api/v1/campaigns",
        {
            "name": "回调",
            "channel": "webhook",
            "consent_channel": "sms",
            "webhook_url": url,
            "content": "新品上市",
            "include_segment_ids": [webhook_audience.pk],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "webhook_url_not_allowed",
        "detail": "The webhook URL is not allowed: it must be a public http(s) address.",
        "errors": {"webhook_url": [reason]},
    }
    assert not Campaign.objects.exists()


def test_the_api_refuses_a_change_to_an_internal_url(
    client: APIClient, webhook_audience: Segment
) -> None:
    campaign = webhook_campaign(webhook_audience, PUBLIC_URL)

    response = client.patch(
        f"/api/v1/campaigns/{campaign.pk}", {"webhook_url": "http://[::1]:5432/"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_not_allowed"
    assert response.json()["errors"] == {"webhook_url": [inside("::1")]}
    campaign.refresh_from_db()
    assert campaign.webhook_url == PUBLIC_URL


def test_the_admin_form_shows_the_refusal_and_saves_nothing(
    webhook_audience: Segment, admin_client_en: Client
) -> None:
    response = campaign_add_posted(
        admin_client_en,
        name="回调",
        channel="webhook",
        consent_channel="sms",
        webhook_url="http://169.254.169.254/latest/meta-data/",
        include_segments=[webhook_audience.pk],
        **{"variants-0-name": "A", "variants-0-content": "新品上市"},
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["webhook_url"] == [inside("169.254.169.254")]
    assert form.non_field_errors() == [
        "The webhook URL is not allowed: it must be a public http(s) address."
    ]
    assert not Campaign.objects.exists()


# --- When the posts are made ----------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[..., WebhookReceiver]]:
    """`serve(status=..., location=...)`: a receiver on 127.0.0.1 answering so."""
    with ExitStack() as receivers:
        yield lambda **answer: receivers.enter_context(WebhookReceiver(**answer))


def planned(campaign: Campaign) -> int:
    """Launch and plan the campaign; answers its one call."""
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    (call,) = calls_of(campaign)
    return call


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.8"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["100.64.1.1"],
        ["0.0.0.0"],  # noqa: S104
        [PUBLIC_TEST_ADDRESS, "192.168.0.10"],
    ],
)
def test_a_host_that_resolves_inside_the_network_at_send_time_is_refused_for_good(
    webhook_audience: Segment,
    serve: Callable[..., WebhookReceiver],
    resolve_to: Callable[..., None],
    addresses: list[str],
) -> None:
    """DNS rebinding: public when the campaign was saved, internal when it posts."""
    receiver = serve()
    campaign = webhook_campaign(webhook_audience, f"http://rebind.example.com:{receiver.port}/hook")
    call = planned(campaign)
    resolve_to("rebind.example.com", addresses)

    channel_sends_run(channel_send_ids=[call])

    assert receiver.received == []
    delivery = Delivery.objects.get(campaign=campaign)
    internal = next(a for a in addresses if a != PUBLIC_TEST_ADDRESS)
    assert (delivery.status, delivery.reason, delivery.attempts, delivery.retry_at) == (
        DeliveryStatus.DEAD_LETTER,
        DeliveryReason.WEBHOOK_URL_NOT_ALLOWED,
        1,
        None,
    )
    # In the business language, for the operator reading the ledger.
    assert delivery.error == f"该地址位于内网或保留网段（{internal}），不允许推送。"
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.FINISHED


def test_a_host_that_stops_resolving_is_retried_not_given_up(
    webhook_audience: Segment, resolve_to: Callable[..., None]
) -> None:
    campaign = webhook_campaign(webhook_audience, PUBLIC_URL)
    call = planned(campaign)
    resolve_to("hooks.example.com", [])

    channel_sends_run(channel_send_ids=[call])

    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.status, delivery.reason, delivery.attempts) == (
        DeliveryStatus.RESERVED,
        "",
        1,
    )
    assert delivery.error == "主机名无法解析。"
    assert delivery.retry_at is not None
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.REQUESTED


def test_the_post_goes_to_the_address_checked_with_the_host_name_in_its_header(
    webhook_audience: Segment,
    serve: Callable[..., WebhookReceiver],
    resolve_to: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = serve()
    port = receiver.port
    campaign = webhook_campaign(webhook_audience, f"http://pinned.example.com:{port}/hook?x=1")
    call = planned(campaign)
    resolve_to("pinned.example.com", ["127.0.0.1"])
    # A second lookup of the name (by the HTTP client) would answer nothing useful.
    lookup = socket.getaddrinfo

    def no_second_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host != "pinned.example.com", "the host name was resolved a second time"
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_second_lookup)

    with override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True):
        channel_sends_run(channel_send_ids=[call])

    ((path, headers),) = [(post.path, post.headers) for post in receiver.received]
    assert path == "/hook?x=1"
    assert headers["Host"] == f"pinned.example.com:{port}"
    assert Delivery.objects.get(campaign=campaign).status == DeliveryStatus.SENT


@override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
def test_a_redirect_is_not_followed_and_fails_the_delivery(
    webhook_audience: Segment, serve: Callable[..., WebhookReceiver]
) -> None:
    elsewhere = serve()
    redirecting = serve(status=302, location=elsewhere.url)
    campaign = webhook_campaign(webhook_audience, redirecting.url)
    call = planned(campaign)

    channel_sends_run(channel_send_ids=[call])

    assert len(redirecting.received) == 1
    assert elsewhere.received == []
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.status, delivery.reason, delivery.attempts, delivery.retry_at) == (
        DeliveryStatus.FAILED,
        DeliveryReason.CHANNEL_ERROR,
        1,
        None,
    )
    assert delivery.error == "HTTP 302：接收方要求跳转，系统不跟随跳转。"
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.FINISHED


def self_signed(name: str, folder: Any) -> tuple[str, str]:
    """A certificate for `name` (its own CA) and its key, as PEM files in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_an_https_post_to_the_checked_address_names_the_host_for_tls(
    webhook_audience: Segment,
    resolve_to: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    """Connected by address, the post still gives the host name as TLS server name (SNI) and
    has the certificate checked against it."""
    cert, key = self_signed("secure.example.com", tmp_path)
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    # The receiver's certificate is trusted as a public CA's would be.
    monkeypatch.setattr(
        webhook.httpx,
        "Client",
        functools.partial(httpx.Client, verify=ssl.create_default_context(cafile=cert)),
    )
    with WebhookReceiver(tls=context) as receiver:
        campaign = webhook_campaign(
            webhook_audience, f"https://secure.example.com:{receiver.port}/hook"
        )
        call = planned(campaign)
        resolve_to("secure.example.com", ["127.0.0.1"])
        with override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True):
            channel_sends_run(channel_send_ids=[call])

    assert server_names == ["secure.example.com"]
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.status, delivery.error) == (DeliveryStatus.SENT, "")
