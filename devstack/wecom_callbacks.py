"""WeCom's side of the callbacks, for tests, benchmarks and `make run`: the XML of each 客户联系
event WeCom sends (field names as in WeCom's documents: developer.work.weixin.qq.com, paths
92130 for contacts, 92130/92277 for customer group chats, 92117 for corp tags), signed and
encrypted as WeCom does it (wechatpy's `WeChatCrypto`), and sent to the product's
/wecom/callback over HTTP.

    emitter = CallbackEmitter(url, token=..., aes_key=..., corp_id=...)
    emitter.verify_url()                               # WeCom's GET when the URL is saved
    emitter.send(contact_event_xml("add_external_contact", user_id="zhangsan",
                                   external_userid="wmAbc", state="video-42"))

No product module imports this one (devstack is imported by none)."""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import xmltodict
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner

# Changes of each event, as WeCom names them.
CONTACT_CHANGES = (
    "add_external_contact",
    "edit_external_contact",
    "add_half_external_contact",
    "del_external_contact",
    "del_follow_user",
    "transfer_fail",
)
CHAT_CHANGES = ("create", "update", "dismiss")
CHAT_UPDATE_DETAILS = ("add_member", "del_member", "change_owner", "change_name", "change_notice")
TAG_CHANGES = ("create", "update", "delete", "shuffle")


def _cdata(value: str) -> str:
    # "]]>" inside a value ends one CDATA section and starts another.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def event_xml(
    event: str,
    change_type: str,
    *,
    corp_id: str = "corp1",
    create_time: int | None = None,
    fields: Iterable[tuple[str, str | int | list[str] | None]] = (),
) -> str:
    """One event message as WeCom writes it: ToUserName (the corp), FromUserName "sys",
    CreateTime, MsgType "event", Event, ChangeType, then `fields` in order (None left out;
    a list becomes <Item> children; a number is written bare, a text as CDATA)."""
    created = int(time.time()) if create_time is None else create_time
    parts = [
        f"<ToUserName>{_cdata(corp_id)}</ToUserName>",
        f"<FromUserName>{_cdata('sys')}</FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType>{_cdata('event')}</MsgType>",
        f"<Event>{_cdata(event)}</Event>",
        f"<ChangeType>{_cdata(change_type)}</ChangeType>",
    ]
    for name, value in fields:
        if value is None:
            continue
        if isinstance(value, list):
            items = "".join(f"<Item>{_cdata(item)}</Item>" for item in value)
            parts.append(f"<{name}>{items}</{name}>")
        elif isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}>{_cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def contact_event_xml(
    change_type: str,
    *,
    user_id: str,
    external_userid: str,
    corp_id: str = "corp1",
    create_time: int | None = None,
    state: str | None = None,
    welcome_code: str | None = None,
    source: str | None = None,
    fail_reason: str | None = None,
) -> str:
    """change_external_contact (企业客户事件): UserID (the staff member), ExternalUserID;
    State and WelcomeCode on add_external_contact / add_half_external_contact; Source
    ("DELETE_BY_TRANSFER") on del_external_contact; FailReason ("customer_refused",
    "customer_limit_exceed") on transfer_fail."""
    assert change_type in CONTACT_CHANGES, change_type
    return event_xml(
        "change_external_contact",
        change_type,
        corp_id=corp_id,
        create_time=create_time,
        fields=[
            ("FailReason", fail_reason),
            ("UserID", user_id),
            ("ExternalUserID", external_userid),
            ("State", state),
            ("WelcomeCode", welcome_code),
            ("Source", source),
        ],
    )


def chat_event_xml(
    change_type: str,
    *,
    chat_id: str,
    corp_id: str = "corp1",
    create_time: int | None = None,
    update_detail: str | None = None,
    join_scene: int | None = None,
    quit_scene: int | None = None,
    mem_change_list: list[str] | None = None,
    last_mem_ver: str | None = None,
    cur_mem_ver: str | None = None,
) -> str:
    """change_external_chat (客户群事件): ChatId; on update, UpdateDetail (add_member,
    del_member, change_owner, change_name, change_notice), JoinScene (0 invited by a member,
    1 by link, 3 by QR code) on add_member, QuitScene (0 left, 1 removed by a member) on
    del_member, MemChangeCnt and MemChangeList (the members' ids as <Item>s), LastMemVer and
    CurMemVer (the member list's versions)."""
    assert change_type in CHAT_CHANGES, change_type
    assert update_detail is None or update_detail in CHAT_UPDATE_DETAILS, update_detail
    members = mem_change_list
    return event_xml(
        "change_external_chat",
        change_type,
        corp_id=corp_id,
        create_time=create_time,
        fields=[
            ("ChatId", chat_id),
            ("UpdateDetail", update_detail),
            ("JoinScene", join_scene),
            ("QuitScene", quit_scene),
            ("MemChangeCnt", None if members is None else len(members)),
            ("MemChangeList", members),
            ("LastMemVer", last_mem_ver),
            ("CurMemVer", cur_mem_ver),
        ],
    )


def tag_event_xml(
    change_type: str,
    *,
    tag_id: str,
    corp_id: str = "corp1",
    create_time: int | None = None,
    tag_type: str | None = "tag",
    strategy_id: int | None = None,
) -> str:
    """change_external_tag (企业客户标签事件): Id (of the tag or tag group), TagType ("tag" or
    "tag_group"; shuffle has none), StrategyId (rule-group tags only). On shuffle, Id is the
    tag group whose tags were reordered (absent: the groups themselves)."""
    assert change_type in TAG_CHANGES, change_type
    return event_xml(
        "change_external_tag",
        change_type,
        corp_id=corp_id,
        create_time=create_time,
        fields=[
            ("Id", tag_id),
            ("TagType", None if change_type == "shuffle" else tag_type),
            ("StrategyId", strategy_id),
        ],
    )


@dataclass(frozen=True)
class SignedCallback:
    """A POST as WeCom sends it: its query (msg_signature, timestamp, nonce) and body."""

    query: dict[str, str]
    body: bytes

    def url(self, base_url: str) -> str:
        return f"{base_url}?{urlencode(self.query)}"


def signed_callback(
    message: str,
    *,
    token: str,
    aes_key: str,
    corp_id: str,
    timestamp: int | None = None,
    nonce: str | None = None,
    agent_id: str = "",
) -> SignedCallback:
    """`message` encrypted for the corp and signed with the token (wechatpy's
    `WeChatCrypto.encrypt_message`), in WeCom's POST layout: ToUserName, Encrypt, AgentID in
    the body; the signature, timestamp and nonce in the query."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(secrets.randbelow(10**10))
    crypto = WeChatCrypto(token, aes_key, corp_id)
    reply = xmltodict.parse(crypto.encrypt_message(message, nonce, stamp))["xml"]
    body = (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName>"
        f"<Encrypt>{_cdata(reply['Encrypt'])}</Encrypt>"
        f"<AgentID>{_cdata(agent_id)}</AgentID></xml>"
    )
    return SignedCallback(
        query={"msg_signature": reply["MsgSignature"], "timestamp": stamp, "nonce": nonce},
        body=body.encode(),
    )


def signed_url_check(
    *, token: str, aes_key: str, corp_id: str, echo: str, timestamp: int | None = None
) -> dict[str, str]:
    """The query of WeCom's URL check (GET): `echo` encrypted as echostr, and its signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = str(secrets.randbelow(10**10))
    crypto = WeChatCrypto(token, aes_key, corp_id)
    echostr = PrpCrypto(crypto.key).encrypt(echo, corp_id).decode()
    signer = WeChatSigner()
    signer.add_data(token, stamp, nonce, echostr)
    return {
        "msg_signature": signer.signature,
        "timestamp": stamp,
        "nonce": nonce,
        "echostr": echostr,
    }


@dataclass
class CallbackEmitter:
    """WeCom's callback sender, pointed at the product's callback URL."""

    url: str
    token: str
    aes_key: str
    corp_id: str
    timeout: float = 5.0  # WeCom's own wait for an answer

    def verify_url(self) -> tuple[int, str]:
        """WeCom's GET when the URL is saved: answers (status, body); the body must be the
        echo for WeCom to accept the URL."""
        echo = str(secrets.randbelow(10**19))
        query = signed_url_check(
            token=self.token, aes_key=self.aes_key, corp_id=self.corp_id, echo=echo
        )
        status, body = self._request(f"{self.url}?{urlencode(query)}", None)
        return status, body

    def send(self, message: str, *, timestamp: int | None = None) -> tuple[int, str]:
        """POST one event (XML as the `*_event_xml` functions write it): (status, body)."""
        signed = signed_callback(
            message,
            token=self.token,
            aes_key=self.aes_key,
            corp_id=self.corp_id,
            timestamp=timestamp,
        )
        return self._request(signed.url(self.url), signed.body)

    def _request(self, url: str, body: bytes | None) -> tuple[int, str]:
        request = urllib.request.Request(  # noqa: S310 - the product's URL, http(s) only
            url,
            data=body,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "text/xml"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
