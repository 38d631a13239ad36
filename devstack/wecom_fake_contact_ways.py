"""The WeCom fake's contact ways (联系我 / 渠道活码): ``externalcontact/add_contact_way``,
``get_contact_way``, ``update_contact_way`` and ``del_contact_way`` with the real API's fields,
each code's QR image served by the fake itself (``GET /_fake/qr/<config_id>.png``, a small
valid PNG drawn from the config id), and `contact_way_scan`, a customer scanning a code: the
directory gains the contact and a relation carrying the code's state, as WeCom would before
it calls back ``add_external_contact``. Standard library only, like the fake."""

from __future__ import annotations

import hashlib
import secrets
import struct
import zlib
from collections.abc import Callable
from typing import Any

from devstack.wecom_directory import (
    ADD_WAY_CONTACT_WAY,
    Contact,
    ContactWayConfig,
    Directory,
    Follow,
)
from devstack.wecom_fake import FakeWeCom, WeComError

JSONDict = dict[str, Any]

# The real API's errcodes for what it refuses here (developer.work.weixin.qq.com/document/
# path/90313): 40003 unknown userid, 40035 bad parameter, 41044 missing config_id (the fake
# also answers it for an unknown one), 84074 no privilege for the contact-way API.
ERRCODE_INVALID_USERID = 40003
ERRCODE_INVALID_PARAMETER = 40035
ERRCODE_INVALID_CONFIG_ID = 41044

KIND_SINGLE, KIND_MULTI = 1, 2
SCENE_MINIPROGRAM, SCENE_QR_CODE = 1, 2
STATE_MAX_CHARS = 30
REMARK_MAX_CHARS = 30
USERS_MAX = 100

QR_PATH = "qr/"


def _error(errcode: int, errmsg: str) -> WeComError:
    return WeComError(errcode, errmsg)


def qr_code_url(fake: FakeWeCom, config_id: str) -> str:
    """Where the code's image is served: the fake itself (tests may point it elsewhere)."""
    return f"{fake.base_url}/_fake/{QR_PATH}{config_id}.png"


def qr_png(seed: str, *, modules: int = 21, scale: int = 4) -> bytes:
    """A small valid greyscale PNG that looks like a QR code, the same for the same seed."""
    bits = hashlib.shake_256(seed.encode()).digest(-(-modules * modules // 8))
    size = modules * scale
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter type None
        for x in range(size):
            index = (y // scale) * modules + x // scale
            row.append(0 if bits[index // 8] >> (index % 8) & 1 else 255)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def _users(fake: FakeWeCom, body: JSONDict, kind: int) -> list[str]:
    users = body.get("user") or []
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise _error(ERRCODE_INVALID_PARAMETER, "user must be a list of userids")
    users = list(dict.fromkeys(users))
    if not users or len(users) > USERS_MAX:
        raise _error(ERRCODE_INVALID_PARAMETER, "user is required")
    if kind == KIND_SINGLE and len(users) != 1:
        raise _error(ERRCODE_INVALID_PARAMETER, "type 1 takes exactly one user")
    unknown = [u for u in users if fake.directory.staff and u not in fake.directory.staff]
    if unknown:
        raise _error(ERRCODE_INVALID_USERID, "invalid userid")
    return users


def _text(body: JSONDict, field: str, maximum: int) -> str:
    value = body.get(field) or ""
    if not isinstance(value, str) or len(value) > maximum:
        raise _error(ERRCODE_INVALID_PARAMETER, f"{field} must be at most {maximum} characters")
    return value


def _config(fake: FakeWeCom, body: JSONDict) -> ContactWayConfig:
    config_id = body.get("config_id")
    if not isinstance(config_id, str) or not config_id:
        raise _error(ERRCODE_INVALID_CONFIG_ID, "config_id missing")
    config = fake.directory.contact_ways.get(config_id)
    if config is None:
        raise _error(ERRCODE_INVALID_CONFIG_ID, "invalid config_id")
    return config


def add_contact_way(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    kind, scene = body.get("type"), body.get("scene")
    if kind not in (KIND_SINGLE, KIND_MULTI) or scene not in (SCENE_MINIPROGRAM, SCENE_QR_CODE):
        raise _error(ERRCODE_INVALID_PARAMETER, "type must be 1 or 2 and scene 1 or 2")
    users = _users(fake, body, kind)
    state = _text(body, "state", STATE_MAX_CHARS)
    remark = _text(body, "remark", REMARK_MAX_CHARS)
    config_id = secrets.token_hex(16)
    config = ContactWayConfig(
        config_id=config_id,
        type=kind,
        scene=scene,
        state=state,
        user=users,
        skip_verify=bool(body.get("skip_verify", True)),
        remark=remark,
        qr_code=qr_code_url(fake, config_id) if scene == SCENE_QR_CODE else "",
    )
    fake.directory.contact_ways[config_id] = config
    answer: JSONDict = {"config_id": config_id}
    if config.qr_code:
        answer["qr_code"] = config.qr_code
    return answer


def get_contact_way(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    config = _config(fake, body)
    return {
        "contact_way": {
            "config_id": config.config_id,
            "type": config.type,
            "scene": config.scene,
            "remark": config.remark,
            "skip_verify": config.skip_verify,
            "state": config.state,
            "qr_code": config.qr_code,
            "user": list(config.user),
            "party": [],
        }
    }


def update_contact_way(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    config = _config(fake, body)
    if "user" in body:
        config.user = _users(fake, body, config.type)
    if "state" in body:
        config.state = _text(body, "state", STATE_MAX_CHARS)
    if "remark" in body:
        config.remark = _text(body, "remark", REMARK_MAX_CHARS)
    if "skip_verify" in body:
        config.skip_verify = bool(body["skip_verify"])
    return {}


def del_contact_way(fake: FakeWeCom, body: JSONDict, now: float) -> JSONDict:
    config = _config(fake, body)
    del fake.directory.contact_ways[config.config_id]
    return {}


def qr_image(fake: FakeWeCom, name: str) -> tuple[str, bytes] | None:
    """``/_fake/qr/<config_id>.png``: the code's image, or None (404) for an unknown one."""
    config_id = name.removesuffix(".png")
    if config_id not in fake.directory.contact_ways:
        return None
    return "image/png", qr_png(config_id)


def contact_way_scan(
    directory: Directory,
    *,
    config_id: str,
    external_userid: str,
    name: str,
    createtime: int,
    userid: str | None = None,
    unionid: str = "",
) -> Follow:
    """A customer scans the code: the contact (new, or the one already known) and a relation
    with the code's staff member (`userid`, default its first) carrying the code's state, added
    by QR code. Call it under the fake's lock if the fake is serving, then let the callbacks
    tell the product (add_external_contact with the State)."""
    config = directory.contact_ways[config_id]
    staff_userid = userid or config.user[0]
    if staff_userid not in config.user:
        raise ValueError("the staff member is not on this contact way")
    directory.contacts.setdefault(
        external_userid, Contact(external_userid, name=name, unionid=unionid)
    )
    follow = Follow(
        staff_userid,
        external_userid,
        createtime=createtime,
        add_way=ADD_WAY_CONTACT_WAY,
        state=config.state,
    )
    directory.follows[(staff_userid, external_userid)] = follow
    return follow


ROUTES: dict[str, Callable[[FakeWeCom, JSONDict, float], JSONDict]] = {
    "externalcontact/add_contact_way": add_contact_way,
    "externalcontact/get_contact_way": get_contact_way,
    "externalcontact/update_contact_way": update_contact_way,
    "externalcontact/del_contact_way": del_contact_way,
}
# Files served under /_fake/<prefix>: prefix -> handler(fake, rest of the path).
FILES: dict[str, Callable[[FakeWeCom, str], tuple[str, bytes] | None]] = {QR_PATH: qr_image}
