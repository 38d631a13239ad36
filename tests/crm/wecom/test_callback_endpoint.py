"""/wecom/callback: WeCom's URL check, an event stored once however often it is delivered and
queued for processing after commit, and every refusal answered 4xx with its code, logged
without personal data, with nothing written or queued."""

import base64
import hashlib
import logging
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.test import Client, override_settings
from wechatpy.utils import WeChatSigner

from crm.models import WeComEvent, WeComEventStatus
from crm.personal_data import decrypt, hash_identity
from crm.wecom.callbacks import MAX_BODY_BYTES
from devstack.wecom_callbacks import contact_event_xml, signed_callback, tag_event_xml
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.callback_support import (
    AES_KEY,
    CALLBACK_SETTINGS,
    TOKEN,
    callback_url,
    get_url_check,
    post_callback,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("callback_settings")]

EXTERNAL_USERID = "wmExternalCallback0001"


@pytest.fixture
def callback_settings(settings) -> None:
    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)


def _add_event(**kwargs: object) -> str:
    return contact_event_xml(
        "add_external_contact",
        user_id="zhangsan",
        external_userid=EXTERNAL_USERID,
        state="douyin-live-7",
        welcome_code="WELCOME1",
        **kwargs,  # type: ignore[arg-type]
    )


def test_url_check_echoes_the_decrypted_echostr(client: Client) -> None:
    answer = get_url_check(client, echo="8861329745512345678")
    assert (answer.status_code, answer.content) == (200, b"8861329745512345678")
    assert answer["Content-Type"].startswith("text/plain")


def test_url_check_with_a_stale_timestamp_is_refused(client: Client) -> None:
    answer = get_url_check(client, echo="1", timestamp=int(time.time()) - 301)
    assert (answer.status_code, answer.content) == (403, b"stale_timestamp")


def test_a_valid_post_stores_one_event_and_queues_it_after_commit(
    client: Client, enqueued, django_capture_on_commit_callbacks
) -> None:
    message = _add_event(create_time=1764900000)
    with django_capture_on_commit_callbacks(execute=True):
        answer = post_callback(client, message)
    assert (answer.status_code, answer.content) == (200, b"success")
    event = WeComEvent.objects.get()
    assert (event.event, event.change_type, event.status, event.attempts) == (
        "change_external_contact",
        "add_external_contact",
        WeComEventStatus.PENDING,
        0,
    )
    assert int(event.event_at.timestamp()) == 1764900000
    assert decrypt(event.message_encrypted) == message
    assert EXTERNAL_USERID not in event.message_encrypted
    assert event.message_hash == hashlib.sha256(message.encode()).hexdigest()
    assert event.subject_hash == hash_identity("wecom", CORP_ID, EXTERNAL_USERID)
    assert [(e.name, e.args) for e in enqueued] == [("crm.wecom_event_process", (event.pk,))]


def test_an_event_naming_no_contact_has_no_subject(client: Client, enqueued) -> None:
    answer = post_callback(client, tag_event_xml("create", tag_id="etTag1", tag_type="tag"))
    assert answer.status_code == 200
    assert WeComEvent.objects.get().subject_hash == ""


def test_the_same_event_delivered_twice_is_stored_and_queued_once(
    client: Client, enqueued, django_capture_on_commit_callbacks
) -> None:
    message = _add_event()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_callback(client, message)
        # WeCom's retry: the same message, encrypted again with another nonce and time.
        second = post_callback(client, message, timestamp=int(time.time()) + 5)
    assert (first.content, second.content) == (b"success", b"success")
    assert WeComEvent.objects.count() == 1
    assert len(enqueued) == 1


def test_a_post_costs_one_query(client: Client, enqueued, django_assert_num_queries) -> None:
    message = _add_event()
    with django_assert_num_queries(1):
        answer = post_callback(client, message)
    assert answer.status_code == 200
    with django_assert_num_queries(1):  # a retry: the same one statement, nothing written
        post_callback(client, message)


@override_settings(WECOM_CALLBACK_TOKEN="")
def test_without_configuration_the_endpoint_is_not_found(client: Client) -> None:
    assert get_url_check(client, echo="1").status_code == 404
    assert post_callback(client, _add_event()).status_code == 404
    assert not WeComEvent.objects.exists()


def _post_raw(client: Client, query: dict[str, str], body: bytes) -> object:
    url = callback_url() + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(url, body, content_type="text/xml")


def _signed_body(encrypt: str, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """A body carrying `encrypt` as is, correctly signed: only the decryption can fail."""
    stamp = str(timestamp or int(time.time()))
    nonce = "12345"
    signer = WeChatSigner()
    signer.add_data(TOKEN, stamp, nonce, encrypt)
    body = f"<xml><ToUserName>{CORP_ID}</ToUserName><Encrypt>{encrypt}</Encrypt></xml>"
    return {"msg_signature": signer.signature, "timestamp": stamp, "nonce": nonce}, body.encode()


def _aes(plaintext: bytes) -> str:
    """`plaintext` AES-CBC encrypted as WeCom does (key from the EncodingAESKey, IV its first
    16 bytes), without adding padding: the test chooses it."""
    key = base64.b64decode(AES_KEY + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def _bad_signature(client: Client) -> object:
    signed = signed_callback(_add_event(), token="another-token", aes_key=AES_KEY, corp_id=CORP_ID)
    return client.post(signed.url(callback_url()), signed.body, content_type="text/xml")


def _tampered_body(client: Client) -> object:
    signed = signed_callback(_add_event(), token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID)
    body = signed.body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[A")
    return client.post(signed.url(callback_url()), body, content_type="text/xml")


def _padded_wrongly(pad: int) -> object:
    """The message laid out as WeCom does (random 16 bytes, length, message, corp id), then
    filled to the block with bytes of value `pad`, whatever their number (PKCS#7 wants as
    many as their value)."""

    def send(client: Client) -> object:
        message = _add_event().encode()
        plain = b"0123456789abcdef" + len(message).to_bytes(4, "big") + message
        plain += CORP_ID.encode()
        plain += bytes([pad]) * (32 + (-len(plain) % 32))
        query, body = _signed_body(_aes(plain))
        return _post_raw(client, query, body)

    return send


def _truncated_ciphertext(client: Client) -> object:
    query, body = _signed_body(base64.b64encode(b"x" * 20).decode())
    return _post_raw(client, query, body)


def _garbage_base64(client: Client) -> object:
    query, body = _signed_body("@@not base64@@")
    return _post_raw(client, query, body)


def _malformed_envelope(client: Client) -> object:
    signed = signed_callback(_add_event(), token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID)
    return client.post(signed.url(callback_url()), signed.body[:-7], content_type="text/xml")


def _doctype_envelope(client: Client) -> object:
    signed = signed_callback(_add_event(), token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID)
    laughs = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;">]>'
    return client.post(signed.url(callback_url()), laughs + signed.body, content_type="text/xml")


REFUSALS = {
    "bad signature": (_bad_signature, 403, "bad_signature"),
    "tampered body": (_tampered_body, 403, "bad_signature"),
    "stale timestamp": (
        lambda c: post_callback(c, _add_event(), timestamp=int(time.time()) - 301),
        403,
        "stale_timestamp",
    ),
    "future timestamp": (
        lambda c: post_callback(c, _add_event(), timestamp=int(time.time()) + 301),
        403,
        "stale_timestamp",
    ),
    "wrong corp id": (
        lambda c: post_callback(c, _add_event(), corp_id="ww-another-corp"),
        403,
        "wrong_receive_id",
    ),
    # A wrong padding length cuts the corp id short, or the message itself.
    "bad padding length": (_padded_wrongly(3), 403, "wrong_receive_id"),
    "zero padding": (_padded_wrongly(0), 400, "undecryptable"),
    "truncated ciphertext": (_truncated_ciphertext, 400, "undecryptable"),
    "garbage base64": (_garbage_base64, 400, "undecryptable"),
    "malformed envelope": (_malformed_envelope, 400, "malformed_xml"),
    "malformed message": (lambda c: post_callback(c, "<xml><Event>x</Ev"), 400, "malformed_xml"),
    "doctype envelope": (_doctype_envelope, 400, "xml_doctype"),
    "doctype message": (
        lambda c: post_callback(
            c, '<!DOCTYPE xml [<!ENTITY e "x">]><xml><MsgType>event</MsgType></xml>'
        ),
        400,
        "xml_doctype",
    ),
    "no create time": (
        lambda c: post_callback(c, "<xml><MsgType>event</MsgType><Event>e</Event></xml>"),
        400,
        "malformed_event",
    ),
    "event time in the future": (
        lambda c: post_callback(c, _add_event(create_time=int(time.time()) + 3600)),
        400,
        "malformed_event",
    ),
    "oversize body": (
        lambda c: post_callback(c, _add_event().replace("</xml>", "x" * MAX_BODY_BYTES + "</xml>")),
        413,
        "too_large",
    ),
    "no signature": (
        lambda c: c.post(callback_url(), b"<xml/>", content_type="text/xml"),
        400,
        "missing_parameters",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_answers_its_code_and_writes_nothing(
    case: str, client: Client, enqueued, caplog, django_capture_on_commit_callbacks
) -> None:
    send, status, code = REFUSALS[case]
    with (
        caplog.at_level(logging.INFO, logger="crm.views"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        answer = send(client)
    assert (answer.status_code, answer.content.decode()) == (status, code)
    assert not WeComEvent.objects.exists()
    assert enqueued == []
    [record] = [r for r in caplog.records if r.getMessage() == "wecom.callback_refused"]
    assert (record.code, record.status) == (code, status)  # type: ignore[attr-defined]
    # The log line carries the code, never the message or the contact it names.
    assert EXTERNAL_USERID not in str(record.__dict__)


def test_a_body_announced_too_large_is_refused_unread(client: Client) -> None:
    answer = client.generic(
        "POST",
        callback_url() + "?msg_signature=a&timestamp=1&nonce=2",
        b"<xml/>",
        content_type="text/xml",
        CONTENT_LENGTH=str(MAX_BODY_BYTES + 1),
    )
    assert (answer.status_code, answer.content) == (413, b"too_large")


def test_other_methods_are_not_allowed(client: Client) -> None:
    assert client.put(callback_url()).status_code == 405
