"""The WeCom fake's contact ways over HTTP: the real API's fields and refusals, the code's
PNG served by the fake itself, and a customer's scan changing the directory."""

import struct
import zlib

import httpx
import pytest

from devstack.wecom_fake import FakeWeCom, FakeWeComConfig
from devstack.wecom_fake_contact_ways import contact_way_scan, qr_png


@pytest.fixture
def server():
    with FakeWeCom(FakeWeComConfig(corps={"corp": "secret"})) as fake:
        fake.directory.staff = {"zhangsan": "张三", "lisi": "李四"}
        yield fake


def _call(fake: FakeWeCom, endpoint: str, body: dict) -> dict:
    token = httpx.get(
        f"{fake.api_base_url}gettoken", params={"corpid": "corp", "corpsecret": "secret"}
    ).json()["access_token"]
    return httpx.post(
        f"{fake.api_base_url}{endpoint}", params={"access_token": token}, json=body
    ).json()


def test_add_get_update_and_delete(server: FakeWeCom) -> None:
    created = _call(
        server,
        "externalcontact/add_contact_way",
        {"type": 1, "scene": 2, "state": "dy0312", "user": ["zhangsan"], "remark": "视频"},
    )
    assert created["errcode"] == 0
    config_id = created["config_id"]
    assert created["qr_code"] == f"{server.base_url}/_fake/qr/{config_id}.png"
    way = _call(server, "externalcontact/get_contact_way", {"config_id": config_id})
    assert way["contact_way"]["state"] == "dy0312"
    assert way["contact_way"]["user"] == ["zhangsan"]
    updated = _call(
        server,
        "externalcontact/update_contact_way",
        {"config_id": config_id, "user": ["lisi"], "remark": "直播"},
    )
    assert updated["errcode"] == 0
    assert server.directory.contact_ways[config_id].user == ["lisi"]
    assert (
        _call(server, "externalcontact/del_contact_way", {"config_id": config_id})["errcode"] == 0
    )
    gone = _call(server, "externalcontact/get_contact_way", {"config_id": config_id})
    assert gone["errcode"] == 41044


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"type": 1, "scene": 2, "user": ["nobody"]}, 40003),
        ({"type": 1, "scene": 2, "user": ["zhangsan", "lisi"]}, 40035),
        ({"type": 3, "scene": 2, "user": ["zhangsan"]}, 40035),
        ({"type": 1, "scene": 2, "user": ["zhangsan"], "state": "x" * 31}, 40035),
        ({"type": 1, "scene": 2, "user": []}, 40035),
    ],
)
def test_refusals(server: FakeWeCom, body: dict, errcode: int) -> None:
    assert _call(server, "externalcontact/add_contact_way", body)["errcode"] == errcode
    assert server.directory.contact_ways == {}


def test_the_qr_code_is_a_valid_png(server: FakeWeCom) -> None:
    config_id = _call(
        server,
        "externalcontact/add_contact_way",
        {"type": 1, "scene": 2, "user": ["zhangsan"]},
    )["config_id"]
    response = httpx.get(f"{server.base_url}/_fake/qr/{config_id}.png")
    assert response.headers["Content-Type"] == "image/png"
    data = response.content
    assert data == qr_png(config_id)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position = 8
    kinds = []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + chunk) & 0xFFFFFFFF == crc
        kinds.append(kind)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        if kind == b"IDAT":
            pixels = zlib.decompress(chunk)
        position += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    assert len(pixels) == height * (width + 1)
    assert httpx.get(f"{server.base_url}/_fake/qr/unknown.png").status_code == 404


def test_a_scan_adds_the_contact_and_its_relation(server: FakeWeCom) -> None:
    config_id = _call(
        server,
        "externalcontact/add_contact_way",
        {"type": 2, "scene": 2, "state": "ks01", "user": ["zhangsan", "lisi"]},
    )["config_id"]
    follow = contact_way_scan(
        server.directory,
        config_id=config_id,
        external_userid="wmNew",
        name="新客户",
        createtime=1_700_000_000,
        userid="lisi",
    )
    assert (follow.userid, follow.state, follow.add_way) == ("lisi", "ks01", 1)
    assert server.directory.follows_of_contact("wmNew") == [follow]
    with pytest.raises(ValueError):
        contact_way_scan(
            server.directory,
            config_id=config_id,
            external_userid="wmOther",
            name="x",
            createtime=1,
            userid="wangwu",
        )
