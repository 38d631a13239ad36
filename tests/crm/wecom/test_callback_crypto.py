"""The callback's crypto (wechatpy's WeChatCrypto, as crm.wecom.callbacks uses it) against
published vectors: wechatpy's own enterprise test vectors and the sample of WeCom's callback
SDK (企业微信 加解密库, Sample.py: URL check and a decrypted message), directly and through
the endpoint at the sample's time."""

import datetime as dt

import pytest
import time_machine
import xmltodict
from django.test import override_settings
from wechatpy.enterprise import crypto as enterprise_crypto
from wechatpy.enterprise.crypto import WeChatCrypto

from crm.models import WeComEvent
from crm.wecom.callbacks import (
    REFUSED_BAD_SIGNATURE,
    CallbackRefused,
    callback_decrypt,
    callback_url_verify,
)

# wechatpy's tests/test_crypto.py (enterprise).
WECHATPY = {"token": "123456", "key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"}
WECHATPY_CORP_ID = "wx49f0ab532d5d035a"
WECHATPY_ECHOSTR = (
    "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
)
WECHATPY_ENCRYPTED = """<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>"""

# WeCom's callback SDK sample (Sample.py of its 加解密库).
WECOM = {
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
}
WECOM_CORP_ID = "ww1436e0e65a779aee"
WECOM_URL_CHECK = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": (
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    ),
}
WECOM_MESSAGE_QUERY = {
    "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
    "timestamp": "1476422779",
    "nonce": "1597212914",
}
WECOM_MESSAGE_BODY = """<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>
<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>
<AgentID><![CDATA[1000002]]></AgentID>
</xml>"""
WECOM_MESSAGE = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)


def _at(timestamp: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)


def test_wechatpy_vectors_url_check_and_decrypt() -> None:
    crypto = WeChatCrypto(WECHATPY["token"], WECHATPY["key"], WECHATPY_CORP_ID)
    echo = callback_url_verify(
        crypto,
        msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        timestamp="1411443780",
        nonce="437374425",
        echostr=WECHATPY_ECHOSTR,
        now=_at("1411443780"),
    )
    assert echo == "5927782489442352469"
    message = crypto.decrypt_message(
        WECHATPY_ENCRYPTED, "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294"
    )
    fields = xmltodict.parse(message)["xml"]
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_wechatpy_vector_signature_of_another_nonce_is_refused() -> None:
    crypto = WeChatCrypto(WECHATPY["token"], WECHATPY["key"], WECHATPY_CORP_ID)
    with pytest.raises(CallbackRefused) as refusal:
        callback_url_verify(
            crypto,
            msg_signature="dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            timestamp="1411443780",
            nonce="437374424",
            echostr=WECHATPY_ECHOSTR,
            now=_at("1411443780"),
        )
    assert refusal.value.code == REFUSED_BAD_SIGNATURE


def test_wechatpy_vector_encrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """wechatpy's encryption vector, with its fixed random prefix: the emitter's crypto."""
    monkeypatch.setattr(
        enterprise_crypto.PrpCrypto, "get_random_string", lambda self: "1234567890123456"
    )
    crypto = WeChatCrypto(WECHATPY["token"], WECHATPY["key"], WECHATPY_CORP_ID)
    reply = (
        "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
        "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
        "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
        "<CreateTime>1411525903</CreateTime>\n</xml>"
    )
    encrypted = xmltodict.parse(crypto.encrypt_message(reply, "461056294", "1411525903"))["xml"]
    assert encrypted["MsgSignature"] == "407518b7649e86ef23978113f92d27afa9296533"
    assert encrypted["Encrypt"].startswith("9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsG")


def test_wecom_sample_url_check_and_message() -> None:
    crypto = WeChatCrypto(WECOM["token"], WECOM["key"], WECOM_CORP_ID)
    echo = callback_url_verify(crypto, **WECOM_URL_CHECK, now=_at(WECOM_URL_CHECK["timestamp"]))
    assert echo == "1288432023552776189"
    parsed = callback_decrypt(
        crypto,
        body=WECOM_MESSAGE_BODY.encode(),
        **WECOM_MESSAGE_QUERY,
        now=_at(WECOM_MESSAGE_QUERY["timestamp"]),
    )
    assert parsed.message == WECOM_MESSAGE
    assert parsed.fields["Content"] == "你好"
    # A text message, no event: nothing to store.
    assert parsed.event == ""


@pytest.mark.django_db
@override_settings(
    WECOM_CORP_ID=WECOM_CORP_ID,
    WECOM_CALLBACK_TOKEN=WECOM["token"],
    WECOM_CALLBACK_AES_KEY=WECOM["key"],
)
def test_wecom_sample_through_the_endpoint(client) -> None:
    with time_machine.travel(_at(WECOM_URL_CHECK["timestamp"]), tick=False):
        answer = client.get("/wecom/callback", WECOM_URL_CHECK)
    assert (answer.status_code, answer.content) == (200, b"1288432023552776189")
    assert answer["Content-Type"].startswith("text/plain")

    query = "&".join(f"{k}={v}" for k, v in WECOM_MESSAGE_QUERY.items())
    with time_machine.travel(_at(WECOM_MESSAGE_QUERY["timestamp"]), tick=False):
        answer = client.post(
            f"/wecom/callback?{query}", WECOM_MESSAGE_BODY, content_type="text/xml"
        )
    # Taken (WeCom must not send it again), not kept: it is no event.
    assert (answer.status_code, answer.content) == (200, b"success")
    assert not WeComEvent.objects.exists()
    # The same sample a day later is a replay.
    with time_machine.travel(_at(WECOM_MESSAGE_QUERY["timestamp"]) + dt.timedelta(days=1)):
        answer = client.post(
            f"/wecom/callback?{query}", WECOM_MESSAGE_BODY, content_type="text/xml"
        )
    assert (answer.status_code, answer.content) == (403, b"stale_timestamp")
