"""What the callback tests share: the callback's Token and EncodingAESKey in the settings, a
client posting signed callbacks as WeCom does (devstack.wecom_callbacks), and a way to
register a handler for one test."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.test import Client
from django.urls import reverse

from crm.wecom import registry
from devstack.wecom_callbacks import signed_callback, signed_url_check
from tests.campaigns.support import CORP_ID

TOKEN = "callback-token-1"
# 43 characters: the base64 of a 32-byte AES key without its "=" (wechatpy's test key).
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CALLBACK_SETTINGS = {
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_CALLBACK_TOKEN": TOKEN,
    "WECOM_CALLBACK_AES_KEY": AES_KEY,
    "WECOM_CALLBACK_MAX_AGE_SECONDS": 300,
}


def callback_url() -> str:
    return reverse("wecom-callback")


def post_callback(
    client: Client,
    message: str,
    *,
    timestamp: int | None = None,
    corp_id: str = CORP_ID,
    token: str = TOKEN,
    aes_key: str = AES_KEY,
) -> Any:
    """POST `message` signed and encrypted as WeCom sends it."""
    signed = signed_callback(
        message, token=token, aes_key=aes_key, corp_id=corp_id, timestamp=timestamp
    )
    return client.post(signed.url(callback_url()), signed.body, content_type="text/xml")


def get_url_check(client: Client, *, echo: str, timestamp: int | None = None) -> Any:
    query = signed_url_check(
        token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID, echo=echo, timestamp=timestamp
    )
    return client.get(callback_url(), query)


@contextmanager
def handler_registered(
    event: str, change_type: str, handler: Callable[[registry.CallbackEvent], str]
) -> Iterator[None]:
    """`handler` as the one of (event, change_type) for the block; the registry as it was
    afterwards."""
    saved = dict(registry.HANDLERS)
    registry.HANDLERS[(event, change_type)] = handler
    try:
        yield
    finally:
        registry.HANDLERS.clear()
        registry.HANDLERS.update(saved)
