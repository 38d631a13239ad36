"""The WeCom fake, driven over real HTTP through wechatpy's enterprise client.

wechatpy 1.8.18 has no ``wechatpy.work`` package: its WeCom client is
``wechatpy.enterprise.WeChatClient``, and it has no methods for get_groupmsg_task /
get_groupmsg_send_result / get_groupmsg_list_v2, so those go through its generic ``post``.
"""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from devstack.wecom_fake import (
    BEIJING,
    ERRCODE_ACCESS_TOKEN_EXPIRED,
    ERRCODE_INVALID_ACCESS_TOKEN,
    ERRCODE_INVALID_CORPID,
    ERRCODE_INVALID_PARAMETER,
    ERRCODE_INVALID_SECRET,
    ERRCODE_SYSTEM_BUSY,
    FakeWeCom,
    FakeWeComConfig,
)

CORP_ID = "ww_test_corp"
SECRET = "test_secret"
START = datetime(2025, 1, 15, 12, 0, tzinfo=BEIJING).timestamp()
REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeableWeChatClient(WeChatClient):
    """wechatpy's enterprise client with the token request moved along with API_BASE_URL.

    wechatpy 1.8.18 hardcodes https://qyapi.weixin.qq.com/cgi-bin/gettoken in
    `fetch_access_token`, so setting API_BASE_URL alone would still fetch tokens from the real
    WeCom. Every other call already goes to API_BASE_URL.
    """

    def __init__(self, api_base_url: str, corp_id: str, secret: str, **kwargs: Any) -> None:
        super().__init__(corp_id, secret, timeout=5, **kwargs)
        self.API_BASE_URL = api_base_url

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(
            url=f"{self.API_BASE_URL}gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )


class ManualClock:
    """The fake's clock, moved by hand so that delays and periods need no sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(FakeWeComConfig(corps={CORP_ID: SECRET}), clock=clock) as server:
        yield server


@pytest.fixture
def client(fake: FakeWeCom) -> FakeableWeChatClient:
    return FakeableWeChatClient(fake.api_base_url, CORP_ID, SECRET)


def create(
    client: FakeableWeChatClient, external_userids: list[str], sender: str | None = "staff_a"
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "chat_type": "single",
        "external_userid": external_userids,
        "text": {"content": "新品上市"},
    }
    if sender is not None:
        template["sender"] = sender
    result: dict[str, Any] = client.external_contact.add_msg_template(template)
    return result


def task_list(client: FakeableWeChatClient, msgid: str, **page: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.post(
        "externalcontact/get_groupmsg_task", data={"msgid": msgid, **page}
    )
    return result


def send_result(
    client: FakeableWeChatClient, msgid: str, userid: str = "staff_a", **page: Any
) -> dict[str, Any]:
    result: dict[str, Any] = client.post(
        "externalcontact/get_groupmsg_send_result",
        data={"msgid": msgid, "userid": userid, **page},
    )
    return result


def statuses(client: FakeableWeChatClient, msgid: str) -> dict[str, int]:
    return {
        row["external_userid"]: row["status"] for row in send_result(client, msgid)["send_list"]
    }


def call_log(fake: FakeWeCom) -> list[tuple[str, int, int | None]]:
    return [(c["endpoint"], c["http_status"], c["errcode"]) for c in fake.calls()]


# --- tokens ---


def test_token_is_issued_and_the_same_token_returned_while_valid(
    fake: FakeWeCom, client: FakeableWeChatClient, clock: ManualClock
) -> None:
    first = client.fetch_access_token()
    clock.now += 100
    second = client.fetch_access_token()

    assert first["errcode"] == 0
    assert first["expires_in"] == 7200
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 7100


@pytest.mark.parametrize(
    ("corp_id", "secret", "errcode"),
    [("ww_other_corp", SECRET, ERRCODE_INVALID_CORPID), (CORP_ID, "wrong", ERRCODE_INVALID_SECRET)],
)
def test_unknown_corp_or_secret_is_refused(
    fake: FakeWeCom, corp_id: str, secret: str, errcode: int
) -> None:
    client = FakeableWeChatClient(fake.api_base_url, corp_id, secret)

    with pytest.raises(WeChatClientException) as raised:
        client.fetch_access_token()

    assert raised.value.errcode == errcode
    assert call_log(fake) == [("gettoken", 200, errcode)]


def test_expired_token_is_refreshed_by_wechatpy(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    old_token = client.fetch_access_token()["access_token"]
    fake.expire_tokens()

    result = create(client, ["wm_1"])

    assert result["errcode"] == 0
    assert client.access_token != old_token
    assert call_log(fake) == [
        ("gettoken", 200, 0),
        ("externalcontact/add_msg_template", 200, ERRCODE_ACCESS_TOKEN_EXPIRED),
        ("gettoken", 200, 0),
        ("externalcontact/add_msg_template", 200, 0),
    ]
    assert len(fake.messages()) == 1


def test_token_expires_when_its_lifetime_passes(
    fake: FakeWeCom, client: FakeableWeChatClient, clock: ManualClock
) -> None:
    client.fetch_access_token()
    clock.now += 7200

    create(client, ["wm_1"])

    assert [errcode for _, _, errcode in call_log(fake)] == [0, ERRCODE_ACCESS_TOKEN_EXPIRED, 0, 0]


def test_invalid_token_is_refreshed_by_wechatpy(fake: FakeWeCom) -> None:
    client = FakeableWeChatClient(fake.api_base_url, CORP_ID, SECRET, access_token="bogus")

    result = create(client, ["wm_1"])

    assert result["errcode"] == 0
    assert call_log(fake) == [
        ("externalcontact/add_msg_template", 200, ERRCODE_INVALID_ACCESS_TOKEN),
        ("gettoken", 200, 0),
        ("externalcontact/add_msg_template", 200, 0),
    ]


# --- creating, confirming and sending ---


def test_task_is_sent_at_once_with_no_confirmation_delay(
    client: FakeableWeChatClient, clock: ManualClock
) -> None:
    created = create(client, ["wm_1", "wm_2", "wm_1"])

    assert created["errcode"] == 0
    assert created["fail_list"] == []
    assert created["msgid"].startswith("msg")
    tasks = task_list(client, created["msgid"])
    assert tasks["next_cursor"] == ""
    assert tasks["task_list"] == [{"userid": "staff_a", "status": 2, "send_time": int(clock.now)}]
    results = send_result(client, created["msgid"])
    assert results["next_cursor"] == ""
    assert results["send_list"] == [
        {"external_userid": "wm_1", "userid": "staff_a", "status": 1, "send_time": int(clock.now)},
        {"external_userid": "wm_2", "userid": "staff_a", "status": 1, "send_time": int(clock.now)},
    ]


def test_task_never_confirmed_stays_unsent_until_staff_confirm(
    fake: FakeWeCom, client: FakeableWeChatClient, clock: ManualClock
) -> None:
    fake.configure(confirmation_delay_seconds=None)
    msgid = create(client, ["wm_1"])["msgid"]
    clock.now += 30 * 86400

    assert task_list(client, msgid)["task_list"] == [{"userid": "staff_a", "status": 0}]
    assert send_result(client, msgid)["send_list"] == [
        {"external_userid": "wm_1", "userid": "staff_a", "status": 0}
    ]

    fake.confirm(msgid)

    assert task_list(client, msgid)["task_list"] == [
        {"userid": "staff_a", "status": 2, "send_time": int(clock.now)}
    ]
    assert statuses(client, msgid) == {"wm_1": 1}


def test_task_is_sent_when_the_confirmation_delay_has_passed(
    fake: FakeWeCom, client: FakeableWeChatClient, clock: ManualClock
) -> None:
    fake.configure(confirmation_delay_seconds=60)
    created_at = clock.now
    msgid = create(client, ["wm_1"])["msgid"]

    clock.now = created_at + 59
    assert statuses(client, msgid) == {"wm_1": 0}

    clock.now = created_at + 600
    assert send_result(client, msgid)["send_list"] == [
        {
            "external_userid": "wm_1",
            "userid": "staff_a",
            "status": 1,
            "send_time": int(created_at + 60),
        }
    ]


def test_content_is_required(fake: FakeWeCom, client: FakeableWeChatClient) -> None:
    with pytest.raises(WeChatClientException) as raised:
        client.external_contact.add_msg_template(
            {"chat_type": "single", "external_userid": ["wm_1"], "sender": "staff_a"}
        )

    assert raised.value.errcode == ERRCODE_INVALID_PARAMETER
    assert fake.messages() == []


# --- contacts and the platform cap ---


def test_non_contacts_go_to_the_fail_list_and_are_not_sent(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    fake.configure(contacts={"staff_a": ["wm_1", "wm_2"], "staff_b": ["wm_3"]})

    created = create(client, ["wm_1", "wm_3", "wm_unknown", "wm_2"])

    assert created["fail_list"] == ["wm_3", "wm_unknown"]
    assert statuses(client, created["msgid"]) == {"wm_1": 1, "wm_2": 1}


def test_customer_who_left_before_confirmation_fails_with_status_2(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    fake.configure(confirmation_delay_seconds=None, contacts={"staff_a": ["wm_1", "wm_2"]})
    msgid = create(client, ["wm_1", "wm_2"])["msgid"]
    fake.configure(contacts={"staff_a": ["wm_2"]})

    fake.confirm(msgid, "staff_a")

    assert send_result(client, msgid)["send_list"] == [
        {"external_userid": "wm_1", "userid": "staff_a", "status": 2},
        {"external_userid": "wm_2", "userid": "staff_a", "status": 1, "send_time": int(START)},
    ]


def test_receivers_over_the_platform_cap_fail_with_status_3(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    fake.configure(cap_per_receiver=2)
    first = create(client, ["wm_1", "wm_2"])["msgid"]
    second = create(client, ["wm_1"])["msgid"]

    third = create(client, ["wm_1", "wm_3"])["msgid"]

    assert statuses(client, first) == {"wm_1": 1, "wm_2": 1}
    assert statuses(client, second) == {"wm_1": 1}
    assert send_result(client, third)["send_list"] == [
        {"external_userid": "wm_1", "userid": "staff_a", "status": 3},
        {"external_userid": "wm_3", "userid": "staff_a", "status": 1, "send_time": int(START)},
    ]


def test_platform_cap_counts_per_calendar_month_in_beijing_time(
    fake: FakeWeCom, client: FakeableWeChatClient, clock: ManualClock
) -> None:
    fake.configure(cap_per_receiver=1, cap_period="month")
    clock.now = datetime(2025, 1, 31, 23, 30, tzinfo=BEIJING).timestamp()
    january = create(client, ["wm_1"])["msgid"]
    # Still January 31 in UTC, already February in Beijing.
    clock.now = datetime(2025, 2, 1, 0, 10, tzinfo=BEIJING).timestamp()

    february = create(client, ["wm_1"])["msgid"]
    february_again = create(client, ["wm_1"])["msgid"]

    assert statuses(client, january) == {"wm_1": 1}
    assert statuses(client, february) == {"wm_1": 1}
    assert statuses(client, february_again) == {"wm_1": 3}


@pytest.mark.parametrize(
    ("cap_period", "first", "second", "second_status"),
    [
        ("day", datetime(2025, 1, 15, 23, 50), datetime(2025, 1, 16, 0, 10), 1),
        ("day", datetime(2025, 1, 15, 0, 10), datetime(2025, 1, 15, 23, 50), 3),
        # 2025-01-19 is a Sunday: the next minute after it starts a new week.
        ("week", datetime(2025, 1, 19, 23, 50), datetime(2025, 1, 20, 0, 10), 1),
        ("week", datetime(2025, 1, 13, 0, 10), datetime(2025, 1, 19, 23, 50), 3),
        (3600, datetime(2025, 1, 15, 12, 0), datetime(2025, 1, 15, 12, 59, 59), 3),
        (3600, datetime(2025, 1, 15, 12, 0), datetime(2025, 1, 15, 13, 0, 1), 1),
    ],
)
def test_cap_period_bounds_the_count(
    fake: FakeWeCom,
    client: FakeableWeChatClient,
    clock: ManualClock,
    cap_period: str | int,
    first: datetime,
    second: datetime,
    second_status: int,
) -> None:
    fake.configure(cap_per_receiver=1, cap_period=cap_period)
    clock.now = first.replace(tzinfo=BEIJING).timestamp()
    create(client, ["wm_1"])
    clock.now = second.replace(tzinfo=BEIJING).timestamp()

    msgid = create(client, ["wm_1"])["msgid"]

    assert statuses(client, msgid) == {"wm_1": second_status}


def test_cap_is_counted_when_staff_confirm_not_when_the_task_is_created(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    fake.configure(cap_per_receiver=1, confirmation_delay_seconds=None)
    waiting = create(client, ["wm_1"])["msgid"]
    fake.configure(confirmation_delay_seconds=0)
    sent_first = create(client, ["wm_1"])["msgid"]

    fake.confirm(waiting)

    assert statuses(client, sent_first) == {"wm_1": 1}
    assert statuses(client, waiting) == {"wm_1": 3}


def test_concurrent_senders_never_exceed_the_cap(fake: FakeWeCom) -> None:
    fake.configure(cap_per_receiver=4)

    def send_three() -> list[str]:
        client = FakeableWeChatClient(fake.api_base_url, CORP_ID, SECRET)
        return [create(client, ["wm_1"])["msgid"] for _ in range(3)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        msgids = [msgid for batch in pool.map(lambda _: send_three(), range(4)) for msgid in batch]

    receivers = [r for m in fake.messages() for t in m["tasks"] for r in t["receivers"]]
    assert len(msgids) == len(set(msgids)) == 12
    assert sorted(r["status"] for r in receivers) == [1] * 4 + [3] * 8


# --- failures ---


@pytest.mark.parametrize("errcode", [45033, 41001, ERRCODE_SYSTEM_BUSY])
def test_injected_errcode_surfaces_as_wechat_client_exception(
    fake: FakeWeCom, client: FakeableWeChatClient, errcode: int
) -> None:
    client.fetch_access_token()
    fake.inject_errcode("externalcontact/add_msg_template", errcode, times=2)

    for _ in range(2):
        with pytest.raises(WeChatClientException) as raised:
            create(client, ["wm_1"])
        assert raised.value.errcode == errcode
    assert fake.messages() == []

    assert create(client, ["wm_1"])["errcode"] == 0
    assert len(fake.messages()) == 1


def test_injected_http_5xx_surfaces_as_wechat_client_exception(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    client.fetch_access_token()
    fake.inject_http_error("*", status=503)

    with pytest.raises(WeChatClientException) as raised:
        create(client, ["wm_1"])

    assert raised.value.errcode is None
    assert raised.value.response.status_code == 503
    assert fake.messages() == []
    assert create(client, ["wm_1"])["errcode"] == 0


def test_injected_latency_delays_every_call(fake: FakeWeCom, client: FakeableWeChatClient) -> None:
    client.fetch_access_token()
    fake.configure(latency_seconds=0.05)

    started = time.monotonic()
    create(client, ["wm_1"])

    assert time.monotonic() - started >= 0.05


# --- pagination, group chats, records ---


def test_send_results_are_paged_by_cursor(client: FakeableWeChatClient) -> None:
    customers = [f"wm_{n}" for n in range(5)]
    msgid = create(client, customers)["msgid"]

    pages, cursor = [], ""
    while True:
        page = send_result(client, msgid, limit=2, cursor=cursor)
        pages.append([row["external_userid"] for row in page["send_list"]])
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert pages == [customers[0:2], customers[2:4], customers[4:]]
    # Above the maximum (1000) the limit falls back to the default (500), as documented.
    assert len(send_result(client, msgid, limit=1001)["send_list"]) == 5


def test_task_list_is_paged_by_cursor(fake: FakeWeCom, client: FakeableWeChatClient) -> None:
    fake.configure(contacts={"staff_a": ["wm_1"], "staff_b": ["wm_2"], "staff_c": ["wm_3"]})
    msgid = create(client, ["wm_1", "wm_2", "wm_3"], sender=None)["msgid"]

    first = task_list(client, msgid, limit=2)
    second = task_list(client, msgid, limit=2, cursor=first["next_cursor"])

    assert [task["userid"] for task in first["task_list"]] == ["staff_a", "staff_b"]
    assert [task["userid"] for task in second["task_list"]] == ["staff_c"]
    assert second["next_cursor"] == ""
    assert statuses(client, msgid) == {"wm_1": 1}


def test_group_chat_results_carry_chat_ids(client: FakeableWeChatClient) -> None:
    created = client.external_contact.add_msg_template(
        {
            "chat_type": "group",
            "chat_id_list": ["wr_1", "wr_2"],
            "sender": "staff_a",
            "attachments": [{"msgtype": "link", "link": {"title": "t", "url": "https://e.x"}}],
        }
    )

    assert send_result(client, created["msgid"])["send_list"] == [
        {"chat_id": "wr_1", "userid": "staff_a", "status": 1, "send_time": int(START)},
        {"chat_id": "wr_2", "userid": "staff_a", "status": 1, "send_time": int(START)},
    ]


def test_groupmsg_list_v2_lists_messages_created_in_the_time_range(
    client: FakeableWeChatClient, clock: ManualClock
) -> None:
    msgid = create(client, ["wm_1"])["msgid"]
    clock.now += 3600
    create(client, ["wm_2"])

    listed = client.post(
        "externalcontact/get_groupmsg_list_v2",
        data={"chat_type": "single", "start_time": int(START) - 60, "end_time": int(START) + 60},
    )

    assert listed["next_cursor"] == ""
    assert listed["group_msg_list"] == [
        {
            "msgid": msgid,
            "create_time": int(START),
            "create_type": 0,
            "text": {"content": "新品上市"},
        }
    ]


# --- admin endpoints, loopback, command line ---


def test_admin_endpoints_switch_and_inspect_the_fake(
    fake: FakeWeCom, client: FakeableWeChatClient
) -> None:
    admin = httpx.Client(base_url=f"{fake.base_url}/_fake/", timeout=5)

    configured = admin.post("config", json={"confirmation_delay_seconds": None})
    msgid = create(client, ["wm_1"])["msgid"]
    confirmed = admin.post("confirm", json={"msgid": msgid})
    injected = admin.post("inject", json={"endpoint": "*", "errcode": 45033})
    with pytest.raises(WeChatClientException):
        create(client, ["wm_2"])
    messages = admin.get("messages").json()["messages"]
    refused = admin.post("config", json={"cap_per_receiver": -1})
    unknown = admin.post("config", json={"cap": 1})
    missing = admin.post("confirm", json={"msgid": "msg_missing"})
    reset = admin.post("reset")

    assert configured.json()["config"]["confirmation_delay_seconds"] is None
    assert confirmed.status_code == injected.status_code == 200
    assert [m["msgid"] for m in messages] == [msgid]
    assert messages[0]["tasks"][0]["receivers"] == [
        {"external_userid": "wm_1", "status": 1, "send_time": int(START)}
    ]
    assert messages[0]["request"]["text"] == {"content": "新品上市"}
    assert refused.status_code == 400
    assert refused.json() == {"error": "cap_per_receiver must be a non-negative integer or null"}
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "unknown config fields: cap"}
    assert missing.status_code == 404
    assert reset.status_code == 200
    assert admin.get("messages").json() == {"messages": []}
    assert (
        admin.get("config").json()["config"] == FakeWeComConfig(corps={CORP_ID: SECRET}).to_json()
    )


def test_fake_refuses_to_bind_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        FakeWeCom(host="0.0.0.0")  # noqa: S104 - the refusal is under test


def test_command_line_runs_the_fake_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.wecom_fake", "--port", "0", "--cap", "2"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = process.stdout.readline() if process.stdout else ""
        base_url = banner.split("listening on ")[1].split()[0]
        config = httpx.get(f"{base_url}/_fake/config", timeout=5).json()["config"]
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=5)

    assert base_url.startswith("http://127.0.0.1:")
    assert config["cap_per_receiver"] == 2
    assert returncode == 0


def test_command_line_refuses_a_public_host() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "devstack.wecom_fake", "--host", "0.0.0.0"],  # noqa: S104
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )

    assert finished.returncode == 2
    assert "loopback only" in finished.stderr
