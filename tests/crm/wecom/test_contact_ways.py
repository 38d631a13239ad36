"""Channel QR code services against the WeCom fake: creating, changing and stopping a code in
WeCom and here, WeCom's refusals (nothing stored), and the image fetched under the outbound
policy (an internal address other than the configured WeCom host is never asked)."""

import http.server
import threading
from collections.abc import Iterator

import pytest
from django.test import override_settings

from core.errors import Conflict, NotFound, ValidationFailed
from crm.models import ContactWay, ContactWayKind, SourceChannel
from crm.wecom import contact_ways
from crm.wecom.contact_ways import (
    ERROR_STATE_TAKEN,
    ERROR_WECOM_REFUSED,
    QrCodeRefused,
    contact_way_create,
    contact_way_deactivate,
    contact_way_qr_code_image,
    contact_way_update,
    qr_code_download,
)
from devstack import wecom_fake_contact_ways
from devstack.wecom_fake import FakeWeCom
from tests.factories import StaffMemberFactory, TagFactory

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _create(**overrides) -> ContactWay:
    staff = overrides.pop("staff", None) or [StaffMemberFactory(wecom_userid="zhangsan")]
    arguments = {
        "name": "抖音 0312 视频",
        "state": "dy0312",
        "staff_member_ids": [member.pk for member in staff],
        "source_channel": SourceChannel.DOUYIN,
        "actor": "张三",
    }
    return contact_way_create(**(arguments | overrides))


def test_a_code_is_created_in_wecom_and_stored_with_its_image(fake: FakeWeCom) -> None:
    tag = TagFactory()
    contact_way = _create(auto_tag_ids=[tag.pk])

    config = fake.directory.contact_ways[contact_way.config_id]
    assert (config.type, config.scene, config.state) == (1, 2, "dy0312")
    assert config.user == ["zhangsan"]
    assert config.remark == "抖音 0312 视频"
    stored = ContactWay.objects.get()
    assert stored.qr_code_url == f"{fake.base_url}/_fake/qr/{contact_way.config_id}.png"
    image = bytes(stored.qr_code_image)
    assert image.startswith(PNG_SIGNATURE)
    assert image == wecom_fake_contact_ways.qr_png(contact_way.config_id)
    assert list(stored.auto_tags.all()) == [tag]
    assert stored.source_channel == "douyin"
    assert stored.is_active


def test_an_empty_state_is_generated_short_and_safe(fake: FakeWeCom) -> None:
    contact_way = _create(state="")
    assert contact_way.state.startswith("cw")
    assert len(contact_way.state) <= 30
    assert contact_way.state.isalnum()
    assert fake.directory.contact_ways[contact_way.config_id].state == contact_way.state


@pytest.mark.parametrize("state", ["a" * 31, "带中文", "a b", "x;drop"])
def test_an_unsafe_state_is_refused_before_wecom(fake: FakeWeCom, state: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _create(state=state)
    assert refused.value.code == "contact_way_invalid_state"
    assert "state" in refused.value.detail
    assert not ContactWay.objects.exists()
    assert fake.calls() == []


def test_a_taken_state_is_refused(fake: FakeWeCom) -> None:
    _create()
    with pytest.raises(Conflict) as refused:
        _create(staff=[StaffMemberFactory()])
    assert refused.value.code == ERROR_STATE_TAKEN
    assert ContactWay.objects.count() == 1
    assert len(fake.directory.contact_ways) == 1


def test_one_staff_member_code_takes_exactly_one(fake: FakeWeCom) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _create(staff=[StaffMemberFactory(), StaffMemberFactory()])
    assert refused.value.code == "contact_way_staff_members"
    contact_way = _create(
        staff=[StaffMemberFactory(), StaffMemberFactory()], kind=ContactWayKind.MULTI
    )
    assert len(fake.directory.contact_ways[contact_way.config_id].user) == 2


def test_a_wecom_refusal_stores_nothing(fake: FakeWeCom) -> None:
    fake.inject_errcode("externalcontact/add_contact_way", 60011)
    with pytest.raises(Conflict) as refused:
        _create()
    assert refused.value.code == ERROR_WECOM_REFUSED
    assert "60011" in refused.value.message
    assert not ContactWay.objects.exists()
    assert fake.directory.contact_ways == {}


def test_an_unknown_staff_member_in_wecom_is_refused(fake: FakeWeCom) -> None:
    fake.directory.staff = {"lisi": "李四"}
    with pytest.raises(Conflict) as refused:
        _create()
    assert refused.value.code == ERROR_WECOM_REFUSED
    assert "40003" in refused.value.message
    assert not ContactWay.objects.exists()


def test_update_changes_wecom_then_here(fake: FakeWeCom) -> None:
    contact_way = _create()
    lisi = StaffMemberFactory(wecom_userid="lisi")
    tag = TagFactory()
    contact_way_update(
        contact_way_id=contact_way.pk,
        name="快手直播间",
        staff_member_ids=[lisi.pk],
        auto_tag_ids=[tag.pk],
        source_channel=SourceChannel.KUAISHOU,
        skip_verify=False,
        actor="张三",
    )
    config = fake.directory.contact_ways[contact_way.config_id]
    assert (config.user, config.remark, config.skip_verify) == (["lisi"], "快手直播间", False)
    assert config.state == "dy0312"
    stored = ContactWay.objects.get()
    assert (stored.name, stored.source_channel) == ("快手直播间", "kuaishou")
    assert stored.skip_verify is False
    assert list(stored.staff_members.all()) == [lisi]
    assert list(stored.auto_tags.all()) == [tag]


def test_an_update_wecom_refuses_changes_nothing(fake: FakeWeCom) -> None:
    contact_way = _create()
    fake.inject_errcode("externalcontact/update_contact_way", 40035)
    with pytest.raises(Conflict):
        contact_way_update(contact_way_id=contact_way.pk, name="新名字", actor="张三")
    assert ContactWay.objects.get().name == "抖音 0312 视频"


def test_deactivate_deletes_in_wecom_and_keeps_the_code_here(fake: FakeWeCom) -> None:
    contact_way = _create()
    contact_way_deactivate(contact_way_id=contact_way.pk, actor="张三")
    assert fake.directory.contact_ways == {}
    stored = ContactWay.objects.get()
    assert not stored.is_active
    assert stored.qr_code_image  # kept for the reports and the records
    calls = len(fake.calls())
    contact_way_deactivate(contact_way_id=contact_way.pk, actor="张三")  # again: nothing
    assert len(fake.calls()) == calls
    with pytest.raises(Conflict):
        contact_way_update(contact_way_id=contact_way.pk, name="x", actor="张三")


def test_a_deactivation_wecom_refuses_keeps_the_code_active(fake: FakeWeCom) -> None:
    contact_way = _create()
    fake.inject_errcode("externalcontact/del_contact_way", 60011)
    with pytest.raises(Conflict):
        contact_way_deactivate(contact_way_id=contact_way.pk, actor="张三")
    assert ContactWay.objects.get().is_active


class _Receiver(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = wecom_fake_contact_ways.qr_png("elsewhere")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def internal_server() -> Iterator[str]:
    """An image server on loopback that is not the WeCom host: inside the network."""
    _Receiver.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_image_address_inside_the_network_is_never_fetched(
    fake: FakeWeCom, internal_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        wecom_fake_contact_ways,
        "qr_code_url",
        lambda fake, config_id: f"{internal_server}/qr/{config_id}.png",
    )
    contact_way = _create()

    assert _Receiver.hits == []
    stored = ContactWay.objects.get()
    assert stored.config_id == contact_way.config_id  # it exists in WeCom: kept
    assert stored.qr_code_image is None
    with pytest.raises(NotFound) as missing:
        contact_way_qr_code_image(contact_way_id=contact_way.pk)
    assert missing.value.code == "contact_way_qr_code_unavailable"
    assert _Receiver.hits == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.8/qr.png", "internal_address"),
        ("http://169.254.169.254/latest/meta-data", "internal_address"),
        ("http://[::1]:8080/qr.png", "internal_address"),
        ("http://metadata.google.internal/qr.png", "internal_name"),
        ("http://localhost/qr.png", "internal_name"),
        ("ftp://p.qpic.cn/qr.png", "scheme"),
        ("http://user:pw@p.qpic.cn/qr.png", "credentials"),
    ],
)
def test_the_download_refuses_addresses_inside_the_network(url: str, reason: str) -> None:
    with pytest.raises(QrCodeRefused) as refused:
        qr_code_download(url)
    assert str(refused.value) == reason


def test_the_download_takes_images_only_and_small_ones(
    fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(QrCodeRefused) as refused:
        qr_code_download(f"{fake.base_url}/_fake/config")  # JSON, not an image
    assert str(refused.value) == "not_an_image"
    contact_way = _create()
    monkeypatch.setattr(contact_ways, "QR_CODE_MAX_BYTES", 100)
    with pytest.raises(QrCodeRefused) as refused:
        qr_code_download(contact_way.qr_code_url)
    assert str(refused.value) == "too_large"


def test_the_wecom_host_is_the_only_internal_address_allowed(fake: FakeWeCom) -> None:
    contact_way = _create()
    with (
        override_settings(WECOM_API_BASE_URL="https://qyapi.weixin.qq.com/cgi-bin/"),
        pytest.raises(QrCodeRefused),
    ):
        qr_code_download(contact_way.qr_code_url)
    assert qr_code_download(contact_way.qr_code_url).startswith(PNG_SIGNATURE)


def test_a_missing_image_is_fetched_when_first_asked_for(fake: FakeWeCom) -> None:
    contact_way = _create()
    ContactWay.objects.update(qr_code_image=None)
    image = contact_way_qr_code_image(contact_way_id=contact_way.pk)
    assert image == wecom_fake_contact_ways.qr_png(contact_way.config_id)
    assert bytes(ContactWay.objects.get().qr_code_image) == image


def test_creating_changing_and_stopping_are_audited(fake: FakeWeCom) -> None:
    from core.models import AuditEvent

    contact_way = _create()
    contact_way_update(contact_way_id=contact_way.pk, name="快手直播间", actor="张三")
    contact_way_deactivate(contact_way_id=contact_way.pk, actor="李四")
    events = list(AuditEvent.objects.filter(object_type="contact_way").order_by("pk"))
    assert [(e.action, e.actor) for e in events] == [
        ("create", "张三"),
        ("change", "张三"),
        ("change", "李四"),
    ]
    assert events[1].detail["after"] == {"name": "快手直播间"}
    assert events[2].detail["after"] == {"is_active": False}
