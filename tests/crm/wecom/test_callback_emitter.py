"""devstack.wecom_callbacks, WeCom's side: the XML of each event type with WeCom's field
names, read back by the product's parser, and a real HTTP round trip to a live server."""

import pytest
from django.utils import timezone

from crm.models import WeComEvent, WeComEventStatus
from crm.services.wecom_events import wecom_event_process
from crm.wecom.callbacks import event_parse
from devstack.wecom_callbacks import (
    CHAT_CHANGES,
    CONTACT_CHANGES,
    TAG_CHANGES,
    CallbackEmitter,
    chat_event_xml,
    contact_event_xml,
    tag_event_xml,
)
from tests.campaigns.support import CORP_ID
from tests.crm.wecom.callback_support import AES_KEY, CALLBACK_SETTINGS, TOKEN, handler_registered


def _fields(message: str) -> dict[str, object]:
    parsed = event_parse(message, now=timezone.now())
    fields = dict(parsed.fields)
    assert fields.pop("ToUserName") == CORP_ID
    assert fields.pop("FromUserName") == "sys"
    assert fields.pop("MsgType") == "event"
    fields.pop("CreateTime")
    return fields


@pytest.mark.parametrize("change_type", CONTACT_CHANGES)
def test_contact_events(change_type: str) -> None:
    message = contact_event_xml(
        change_type,
        user_id="zhangsan",
        external_userid="wmAbc",
        state="video-42" if change_type.startswith("add") else None,
        welcome_code="WELCOME" if change_type.startswith("add") else None,
        source="DELETE_BY_TRANSFER" if change_type == "del_external_contact" else None,
        fail_reason="customer_refused" if change_type == "transfer_fail" else None,
    )
    expected = {
        "Event": "change_external_contact",
        "ChangeType": change_type,
        "UserID": "zhangsan",
        "ExternalUserID": "wmAbc",
    }
    if change_type.startswith("add"):
        expected |= {"State": "video-42", "WelcomeCode": "WELCOME"}
    if change_type == "del_external_contact":
        expected["Source"] = "DELETE_BY_TRANSFER"
    if change_type == "transfer_fail":
        expected["FailReason"] = "customer_refused"
    assert _fields(message) == expected


@pytest.mark.parametrize("change_type", CHAT_CHANGES)
def test_chat_events(change_type: str) -> None:
    if change_type != "update":
        assert _fields(chat_event_xml(change_type, chat_id="wrC1")) == {
            "Event": "change_external_chat",
            "ChangeType": change_type,
            "ChatId": "wrC1",
        }
        return
    message = chat_event_xml(
        "update",
        chat_id="wrC1",
        update_detail="del_member",
        quit_scene=1,
        mem_change_list=["wmA"],
        last_mem_ver="v1",
        cur_mem_ver="v2",
    )
    assert _fields(message) == {
        "Event": "change_external_chat",
        "ChangeType": "update",
        "ChatId": "wrC1",
        "UpdateDetail": "del_member",
        "QuitScene": "1",
        "MemChangeCnt": "1",
        "MemChangeList": {"Item": "wmA"},
        "LastMemVer": "v1",
        "CurMemVer": "v2",
    }


@pytest.mark.parametrize("change_type", TAG_CHANGES)
def test_tag_events(change_type: str) -> None:
    message = tag_event_xml(change_type, tag_id="etG1", tag_type="tag_group", strategy_id=7)
    expected = {
        "Event": "change_external_tag",
        "ChangeType": change_type,
        "Id": "etG1",
        "StrategyId": "7",
    }
    if change_type != "shuffle":
        expected["TagType"] = "tag_group"
    assert _fields(message) == expected


def test_a_value_holding_the_end_of_cdata_survives() -> None:
    message = contact_event_xml(
        "add_external_contact", user_id="u", external_userid="wm", state="a]]>b"
    )
    assert _fields(message)["State"] == "a]]>b"


@pytest.mark.django_db(transaction=True)
def test_over_http_to_a_live_server(live_server, settings, enqueued) -> None:
    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)
    emitter = CallbackEmitter(
        f"{live_server.url}/wecom/callback", token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID
    )
    status, echo = emitter.verify_url()
    assert status == 200 and echo.isdigit()
    message = contact_event_xml("add_external_contact", user_id="zhangsan", external_userid="wm1")
    assert emitter.send(message) == (200, "success")
    assert emitter.send(message) == (200, "success")  # WeCom's retry
    assert emitter.send(message, timestamp=1) == (403, "stale_timestamp")
    event = WeComEvent.objects.get()
    assert [(e.name, e.args) for e in enqueued] == [("crm.wecom_event_process", (event.pk,))]
    with handler_registered("change_external_contact", "add_external_contact", lambda e: "applied"):
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.APPLIED


@pytest.mark.django_db(transaction=True)
def test_the_command_sends_events_to_a_running_server(live_server, settings, enqueued) -> None:
    from django.core.management import call_command

    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)
    url = f"{live_server.url}/wecom/callback"
    call_command("wecom_callback_send", "verify", url=url)
    call_command(
        "wecom_callback_send",
        "chat",
        "update",
        url=url,
        chat_id="wrC9",
        update_detail="add_member",
        members="wmA,wmB",
        join_scene=3,
    )
    call_command("wecom_callback_send", "tag", "shuffle", url=url, id="etG2")
    assert sorted(WeComEvent.objects.values_list("event", "change_type")) == [
        ("change_external_chat", "update"),
        ("change_external_tag", "shuffle"),
    ]
