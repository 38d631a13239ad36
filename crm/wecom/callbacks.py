"""WeCom's callbacks (the change feed of 客户联系) as they arrive at /wecom/callback: the URL
check WeCom makes when the URL is saved, and each POSTed event checked, decrypted and parsed.
Signatures and AES go through wechatpy's `WeChatCrypto`; this module adds what wechatpy leaves
to its caller: the timestamp window, the size limit, XML without DOCTYPE, and one refusal code
per failure. Reads nothing and writes nothing (crm.services.wecom_events stores events)."""

import binascii
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from django.conf import settings
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

# A callback's body is one encrypted event of a few hundred bytes (a chat update naming its
# changed members is the largest, a few KB); anything beyond this is refused unread.
MAX_BODY_BYTES = 64 * 1024
# Longest <Event> / <ChangeType> stored (WeComEvent.event / change_type).
MAX_NAME_LENGTH = 64
# Events older than this are no WeCom event (the product did not exist): CreateTime is refused.
EARLIEST_EVENT_AT = datetime(2015, 1, 1, tzinfo=UTC)

# Refusal codes: the body of the 4xx answer, and the `code` of the log line.
REFUSED_MISSING_PARAMETERS = "missing_parameters"
REFUSED_TOO_LARGE = "too_large"
REFUSED_STALE_TIMESTAMP = "stale_timestamp"
REFUSED_BAD_SIGNATURE = "bad_signature"
REFUSED_UNDECRYPTABLE = "undecryptable"
REFUSED_WRONG_RECEIVER = "wrong_receive_id"
REFUSED_MALFORMED_XML = "malformed_xml"
REFUSED_XML_DOCTYPE = "xml_doctype"
REFUSED_MALFORMED_EVENT = "malformed_event"

# HTTP status of each refusal: 403 where the sender is not WeCom (or not for this corp, or too
# late), 413 for size, 400 for a message that is not what WeCom sends.
REFUSAL_STATUS = {
    REFUSED_MISSING_PARAMETERS: 400,
    REFUSED_TOO_LARGE: 413,
    REFUSED_STALE_TIMESTAMP: 403,
    REFUSED_BAD_SIGNATURE: 403,
    REFUSED_UNDECRYPTABLE: 400,
    REFUSED_WRONG_RECEIVER: 403,
    REFUSED_MALFORMED_XML: 400,
    REFUSED_XML_DOCTYPE: 400,
    REFUSED_MALFORMED_EVENT: 400,
}

# What wechatpy raises on an Encrypt that is no AES-CBC ciphertext of WeCom's layout: bad
# base64 (binascii.Error), a length no multiple of the block (ValueError), a plaintext too
# short for its length prefix (struct.error, IndexError) or not UTF-8 (UnicodeDecodeError,
# a ValueError). Bad padding shows as a receive id that is not the corp's.
_UNDECRYPTABLE = (binascii.Error, ValueError, struct.error, IndexError, TypeError)


class CallbackRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        self.status = REFUSAL_STATUS[code]


@dataclass(frozen=True)
class ParsedEvent:
    """A decrypted message as stored: its bytes, and what the event store keeps in columns."""

    message: str
    event: str  # "" for a message that is no event (MsgType other than "event")
    change_type: str
    event_at: datetime
    external_userid: str
    fields: dict[str, Any]


def callback_crypto() -> WeChatCrypto | None:
    """wechatpy's crypto for the configured Token / EncodingAESKey / corp id; None while the
    callback is not configured (the endpoint then answers 404)."""
    token = settings.WECOM_CALLBACK_TOKEN
    aes_key = settings.WECOM_CALLBACK_AES_KEY
    if not (token and aes_key and settings.WECOM_CORP_ID):
        return None
    return WeChatCrypto(token, aes_key, settings.WECOM_CORP_ID)


def check_timestamp(timestamp: str, *, now: datetime) -> None:
    """The request's timestamp is within ±WECOM_CALLBACK_MAX_AGE_SECONDS of `now`: a message
    captured and sent again later (a replay) is refused, however well signed."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise CallbackRefused(REFUSED_STALE_TIMESTAMP)
    if abs(now.timestamp() - int(timestamp)) > settings.WECOM_CALLBACK_MAX_AGE_SECONDS:
        raise CallbackRefused(REFUSED_STALE_TIMESTAMP)


def callback_url_verify(
    crypto: WeChatCrypto,
    *,
    msg_signature: str,
    timestamp: str,
    nonce: str,
    echostr: str,
    now: datetime,
) -> str:
    """WeCom's URL check (GET): the decrypted `echostr`, which the answer echoes."""
    if not (msg_signature and timestamp and nonce and echostr):
        raise CallbackRefused(REFUSED_MISSING_PARAMETERS)
    check_timestamp(timestamp, now=now)
    # A "+" of the base64 that reached here unescaped was read as a space.
    echostr = echostr.replace(" ", "+")
    return _decrypted(crypto.check_signature, msg_signature, timestamp, nonce, echostr)


def callback_decrypt(
    crypto: WeChatCrypto,
    *,
    body: bytes,
    msg_signature: str,
    timestamp: str,
    nonce: str,
    now: datetime,
) -> ParsedEvent:
    """A POSTed callback checked (timestamp, signature over token, timestamp, nonce and the
    encrypted body, receive id = corp id), decrypted and parsed. Raises CallbackRefused."""
    if not (msg_signature and timestamp and nonce):
        raise CallbackRefused(REFUSED_MISSING_PARAMETERS)
    if len(body) > MAX_BODY_BYTES:
        raise CallbackRefused(REFUSED_TOO_LARGE)
    check_timestamp(timestamp, now=now)
    envelope = xml_parse(body)
    encrypted = envelope.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise CallbackRefused(REFUSED_MALFORMED_XML)
    message = _decrypted(
        crypto.decrypt_message, {"Encrypt": encrypted}, msg_signature, timestamp, nonce
    )
    return event_parse(message, now=now)


def _decrypted(decrypt: Any, *args: Any) -> str:
    try:
        return str(decrypt(*args))
    except InvalidSignatureException:
        raise CallbackRefused(REFUSED_BAD_SIGNATURE) from None
    except InvalidCorpIdException:
        raise CallbackRefused(REFUSED_WRONG_RECEIVER) from None
    except _UNDECRYPTABLE:
        raise CallbackRefused(REFUSED_UNDECRYPTABLE) from None


def xml_parse(document: bytes | str) -> dict[str, Any]:
    """The children of a WeCom XML document's root <xml>. A DOCTYPE (and with it any entity
    declaration, the billion laughs) is refused before parsing; xmltodict refuses entities
    too."""
    raw = document.encode() if isinstance(document, str) else document
    if b"<!doctype" in raw.lower() or b"<!entity" in raw.lower():
        raise CallbackRefused(REFUSED_XML_DOCTYPE)
    try:
        parsed = xmltodict.parse(raw, disable_entities=True)
    except (ExpatError, ValueError):  # ValueError: xmltodict's refusal of an entity
        raise CallbackRefused(REFUSED_MALFORMED_XML) from None
    root = parsed.get("xml") if isinstance(parsed, dict) else None
    if not isinstance(root, dict):
        raise CallbackRefused(REFUSED_MALFORMED_XML)
    return root


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CallbackRefused(REFUSED_MALFORMED_EVENT)
    return value.strip()


def event_parse(message: str, *, now: datetime) -> ParsedEvent:
    """A decrypted message's columns: Event, ChangeType, CreateTime (in range: after
    EARLIEST_EVENT_AT, not after the timestamp window's end) and the ExternalUserID named."""
    fields = xml_parse(message)
    event = _text(fields, "Event") if _text(fields, "MsgType") == "event" else ""
    change_type = _text(fields, "ChangeType")
    create_time = _text(fields, "CreateTime")
    if len(event) > MAX_NAME_LENGTH or len(change_type) > MAX_NAME_LENGTH:
        raise CallbackRefused(REFUSED_MALFORMED_EVENT)
    if not (create_time.isascii() and create_time.isdigit()) or len(create_time) > 12:
        raise CallbackRefused(REFUSED_MALFORMED_EVENT)
    event_at = datetime.fromtimestamp(int(create_time), tz=UTC)
    latest = now.timestamp() + settings.WECOM_CALLBACK_MAX_AGE_SECONDS
    if event_at < EARLIEST_EVENT_AT or event_at.timestamp() > latest:
        raise CallbackRefused(REFUSED_MALFORMED_EVENT)
    return ParsedEvent(
        message=message,
        event=event,
        change_type=change_type,
        event_at=event_at,
        external_userid=_text(fields, "ExternalUserID"),
        fields=fields,
    )
