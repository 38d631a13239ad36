"""A local fake of the WeCom (企业微信) server API, for tests and `make run`.

It serves, on loopback only, the endpoints the campaign engine calls through wechatpy, with the
request and response fields of the real API, so that wechatpy works against it unchanged once its
base URL points here:

- ``GET  /cgi-bin/gettoken``: access tokens (40013 / 40001 for an unknown corp or secret).
- ``POST /cgi-bin/externalcontact/add_msg_template``: creates a bulk-message task (创建企业群发).
- ``POST /cgi-bin/externalcontact/get_groupmsg_task``: per-sender status (群发成员发送任务列表).
- ``POST /cgi-bin/externalcontact/get_groupmsg_send_result``: per-receiver results (成员执行结果).
- ``POST /cgi-bin/externalcontact/get_groupmsg_list_v2``: the bulk-message records (群发记录列表).

Creating a task is not sending: each sender's share counts as confirmed by the staff member
`confirmation_delay_seconds` after creation (None: only when `FakeWeCom.confirm` says so), and
only then is the platform's own per-receiver cap applied (status 3 above it).

Switches live in `FakeWeComConfig`; change them in code (`FakeWeCom.configure`) or over the admin
endpoints under ``/_fake/`` (see `FakeWeCom` for the list). Standard library only, so neither
Django nor wechatpy is needed to run it: ``python -m devstack.wecom_fake --port 8811``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import importlib
import ipaddress
import itertools
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeGuard, TypeVar
from urllib.parse import parse_qs, urlsplit

from devstack.wecom_directory import Directory

logger = logging.getLogger(__name__)

JSONDict = dict[str, Any]
_T = TypeVar("_T")

# WeCom global error codes (developer.work.weixin.qq.com/document/path/90455).
ERRCODE_OK = 0
ERRCODE_SYSTEM_BUSY = -1
ERRCODE_INVALID_SECRET = 40001
ERRCODE_INVALID_CORPID = 40013
ERRCODE_INVALID_ACCESS_TOKEN = 40014
ERRCODE_INVALID_PARAMETER = 40035
ERRCODE_MISSING_ACCESS_TOKEN = 41001
ERRCODE_MISSING_CORPID = 41002
ERRCODE_MISSING_SECRET = 41004
ERRCODE_ACCESS_TOKEN_EXPIRED = 42001
ERRCODE_INVALID_JSON = 47001

# get_groupmsg_send_result `status` of one receiver.
RECEIVER_UNSENT = 0
RECEIVER_SENT = 1
RECEIVER_NOT_CONTACT = 2
RECEIVER_OVER_CAP = 3

# get_groupmsg_task `status` of one sender: the real API has no 1 here.
SENDER_UNSENT = 0
SENDER_SENT = 2

ENDPOINT_GETTOKEN = "gettoken"
ENDPOINT_ADD_MSG_TEMPLATE = "externalcontact/add_msg_template"
ENDPOINT_GET_GROUPMSG_TASK = "externalcontact/get_groupmsg_task"
ENDPOINT_GET_GROUPMSG_SEND_RESULT = "externalcontact/get_groupmsg_send_result"
ENDPOINT_GET_GROUPMSG_LIST_V2 = "externalcontact/get_groupmsg_list_v2"
ENDPOINTS = (
    ENDPOINT_GETTOKEN,
    ENDPOINT_ADD_MSG_TEMPLATE,
    ENDPOINT_GET_GROUPMSG_TASK,
    ENDPOINT_GET_GROUPMSG_SEND_RESULT,
    ENDPOINT_GET_GROUPMSG_LIST_V2,
)
ANY_ENDPOINT = "*"

API_PREFIX = "/cgi-bin/"
# How often the serving loop looks for `stop()`: the default 0.5 s would add that much to every
# test that starts a fake.
SHUTDOWN_POLL_SECONDS = 0.02
ADMIN_PREFIX = "/_fake/"

# Documented limits: `limit` above the maximum falls back to the default, not to the maximum.
TASK_PAGE_DEFAULT, TASK_PAGE_MAX = 500, 1000
LIST_PAGE_DEFAULT, LIST_PAGE_MAX = 50, 100
MAX_EXTERNAL_USERIDS = 10_000
MAX_CHAT_IDS = 2_000
MAX_ATTACHMENTS = 9

# WeCom counts calendar periods in Beijing time; China has no daylight saving, so a fixed offset
# is exact and needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
CALENDAR_PERIODS = ("day", "week", "month")


@dataclasses.dataclass(frozen=True)
class FakeWeComConfig:
    """The fake's switches. Every field can be changed at run time (`FakeWeCom.configure`).

    - `corps`: corpid -> secret accepted by gettoken; None accepts any pair (demo use).
    - `token_ttl_seconds`: lifetime of an access token (`expires_in`).
    - `confirmation_delay_seconds`: seconds from task creation until each sender counts as having
      confirmed and sent it; 0 at once, None never (until `FakeWeCom.confirm`). A task keeps the
      delay that was set when it was created.
    - `cap_per_receiver` / `cap_period`: how many bulk messages one customer (or customer group)
      may receive per period; None is no cap. The period is "day", "week" or "month" (calendar,
      Beijing time, as WeCom counts) or a number of seconds (a rolling window).
    - `contacts`: staff userid -> external_userids that are that member's customers; None makes
      every customer every member's contact (demo use).
    - `default_sender_userid`: the member who gets a single-chat task created without `sender`
      while `contacts` is None (the real platform picks the customer's last-contacted member).
    - `latency_seconds`: artificial delay before every WeCom API call is answered.
    """

    corps: Mapping[str, str] | None = None
    token_ttl_seconds: int = 7200
    confirmation_delay_seconds: float | None = 0.0
    cap_per_receiver: int | None = 4
    cap_period: str | float = "month"
    contacts: Mapping[str, frozenset[str]] | None = None
    default_sender_userid: str = "fake_staff"
    latency_seconds: float = 0.0

    def __post_init__(self) -> None:
        # Validated here so that code and the admin endpoint reject the same bad values; values
        # are normalised (frozen dataclass, hence object.__setattr__) so JSON lists work too.
        set_field = object.__setattr__
        if self.corps is not None:
            set_field(self, "corps", _string_mapping("corps", self.corps))
        if not _is_int(self.token_ttl_seconds) or self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be a positive integer")
        if self.confirmation_delay_seconds is not None:
            set_field(
                self,
                "confirmation_delay_seconds",
                _non_negative_number("confirmation_delay_seconds", self.confirmation_delay_seconds),
            )
        if self.cap_per_receiver is not None and (
            not _is_int(self.cap_per_receiver) or self.cap_per_receiver < 0
        ):
            raise ValueError("cap_per_receiver must be a non-negative integer or null")
        if isinstance(self.cap_period, str):
            if self.cap_period not in CALENDAR_PERIODS:
                raise ValueError("cap_period must be day, week, month or a number of seconds")
        elif _non_negative_number("cap_period", self.cap_period) == 0:
            raise ValueError("cap_period must be day, week, month or a number of seconds")
        if self.contacts is not None:
            set_field(self, "contacts", _contacts_mapping(self.contacts))
        if not isinstance(self.default_sender_userid, str) or not self.default_sender_userid:
            raise ValueError("default_sender_userid must be a non-empty string")
        set_field(
            self, "latency_seconds", _non_negative_number("latency_seconds", self.latency_seconds)
        )

    def to_json(self) -> JSONDict:
        """The config as JSON (contacts as sorted lists), as `GET /_fake/config` shows it."""
        data = dataclasses.asdict(self)
        if self.contacts is not None:
            data["contacts"] = {staff: sorted(ids) for staff, ids in self.contacts.items()}
        return data


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_negative_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)


def _string_mapping(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{name} must map strings to strings")
    return dict(value)


def _contacts_mapping(value: object) -> dict[str, frozenset[str]]:
    error = "contacts must map a staff userid to a list of external_userids"
    if not isinstance(value, Mapping):
        raise ValueError(error)
    contacts: dict[str, frozenset[str]] = {}
    for staff, ids in value.items():
        if not isinstance(staff, str) or isinstance(ids, str) or not isinstance(ids, Iterable):
            raise ValueError(error)
        members = frozenset(ids)
        if not all(isinstance(i, str) for i in members):
            raise ValueError(error)
        contacts[staff] = members
    return contacts


class WeComError(Exception):
    """A WeCom error answer: HTTP 200 with a non-zero errcode, as the real API sends it."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclasses.dataclass
class _Fault:
    """An injected failure for the next `remaining` calls: an errcode or an HTTP status."""

    errcode: int | None
    errmsg: str
    http_status: int | None
    remaining: int


@dataclasses.dataclass
class _Receiver:
    target_id: str  # external_userid for a single-chat task, chat_id for a group task
    status: int = RECEIVER_UNSENT
    send_time: int | None = None


@dataclasses.dataclass
class _SenderTask:
    userid: str
    receivers: list[_Receiver]
    confirm_at: float | None  # when the staff member confirms; None until told to
    order: int  # creation order, to settle tasks confirmed at the same instant stably
    send_time: int | None = None  # set once confirmed and sent


@dataclasses.dataclass
class _BulkMessage:
    msgid: str
    chat_type: str
    created_at: float
    request: JSONDict
    fail_list: list[str]
    tasks: dict[str, _SenderTask]  # by sender userid, in creation order


class FakeWeCom:
    """The fake WeCom server: `start()` it (or use it as a context manager) and point wechatpy at
    `api_base_url`.

    Admin endpoints (JSON in and out; 400 for bad input, 404 for an unknown msgid):

    - ``GET /_fake/config`` / ``POST /_fake/config`` (body: fields of `FakeWeComConfig` to change)
    - ``GET /_fake/messages``: every created bulk message with its tasks and receiver statuses
    - ``GET /_fake/calls``: every WeCom API call answered, with its HTTP status and errcode
    - ``POST /_fake/inject``: ``{"endpoint": "externalcontact/add_msg_template" or "*",
      "errcode": 45033 | "http_status": 503, "times": 1, "errmsg": "..."}``
    - ``POST /_fake/confirm``: ``{"msgid": "...", "userid": "..." (optional)}``
    - ``POST /_fake/expire_tokens``: every issued token answers 42001 from now on
    - ``POST /_fake/reset``: forget messages, tokens, faults and calls; restore the initial config
    - ``GET /_fake/qr/<config_id>.png``: a contact way's QR image (devstack.wecom_fake_contact_ways)
    """

    def __init__(
        self,
        config: FakeWeComConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_loopback(host)
        self._initial_config = config or FakeWeComConfig()
        self._host = host
        self._port = port
        self._clock = clock
        self._lock = threading.Lock()
        self._server: _FakeWeComServer | None = None
        self._thread: threading.Thread | None = None
        self._order = itertools.count()
        self._reset_state()

    def _reset_state(self) -> None:
        self._config = self._initial_config
        self._tokens: dict[str, float] = {}  # access_token -> expires_at
        self._current_token: dict[tuple[str, str], str] = {}  # (corpid, secret) -> token
        self._messages: dict[str, _BulkMessage] = {}
        self._deliveries: dict[tuple[str, str], list[float]] = {}  # (chat_type, id) -> times
        self._faults: dict[str, deque[_Fault]] = {}
        self._calls: list[JSONDict] = []
        self.directory = Directory()

    # --- lifecycle ---

    def start(self) -> str:
        """Start serving in a background thread; return the base URL (``http://host:port``)."""
        if self._server is not None:
            raise RuntimeError("the WeCom fake is already running")
        self._server = _FakeWeComServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="wecom-fake",
            daemon=True,
        )
        self._thread.start()
        logger.info("wecom_fake.started", extra={"base_url": self.base_url})
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port; safe to call when not running."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        logger.info("wecom_fake.stopped", extra={"base_url": self.base_url})
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeWeCom:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server; admin endpoints are under ``/_fake/``."""
        if self._server is None:
            raise RuntimeError("the WeCom fake is not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.server_port}"

    @property
    def api_base_url(self) -> str:
        """The value for wechatpy's ``API_BASE_URL`` (the real one is
        ``https://qyapi.weixin.qq.com/cgi-bin/``).

        wechatpy 1.8.18's ``wechatpy.enterprise.WeChatClient.fetch_access_token`` hardcodes the
        real gettoken URL, so a client needs that method to build its URL from API_BASE_URL too.
        """
        return f"{self.base_url}{API_PREFIX}"

    # --- switches ---

    @property
    def config(self) -> FakeWeComConfig:
        with self._lock:
            return self._config

    def configure(self, **changes: Any) -> FakeWeComConfig:
        """Change some switches (fields of `FakeWeComConfig`); return the new config."""
        with self._lock:
            self._config = _replace_config(self._config, changes)
            return self._config

    def change_directory(self, change: Callable[[Directory], _T]) -> _T:
        """Run `change` on the directory under the fake's lock (what a staff member or customer
        does in WeCom while the fake serves) and return its result."""
        with self._lock:
            return change(self.directory)

    def inject_errcode(
        self, endpoint: str, errcode: int, *, times: int = 1, errmsg: str | None = None
    ) -> None:
        """Answer the next `times` calls of `endpoint` (or "*" for any) with `errcode`."""
        if not _is_int(errcode) or errcode == ERRCODE_OK:
            raise ValueError("errcode must be a non-zero integer")
        self._inject(
            endpoint, _Fault(errcode, errmsg or f"injected errcode {errcode}", None, times)
        )

    def inject_http_error(self, endpoint: str, *, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` calls of `endpoint` (or "*" for any) with HTTP `status`."""
        if not _is_int(status) or not 500 <= status <= 599:
            raise ValueError("status must be an HTTP 5xx status")
        self._inject(endpoint, _Fault(None, f"injected HTTP {status}", status, times))

    def _inject(self, endpoint: str, fault: _Fault) -> None:
        if endpoint != ANY_ENDPOINT and not _is_endpoint(endpoint):
            known = ", ".join([*ENDPOINTS, *_directory_routes()])
            raise ValueError(f"endpoint must be one of {known} or {ANY_ENDPOINT}")
        if not _is_int(fault.remaining) or fault.remaining < 1:
            raise ValueError("times must be a positive integer")
        with self._lock:
            self._faults.setdefault(endpoint, deque()).append(fault)

    def confirm(self, msgid: str, userid: str | None = None) -> None:
        """The staff member `userid` (default: every sender) confirms the task now."""
        with self._lock:
            message = self._messages.get(msgid)
            if message is None:
                raise LookupError(f"unknown msgid {msgid}")
            if userid is not None and userid not in message.tasks:
                raise LookupError(f"msgid {msgid} has no task for userid {userid}")
            now = self._clock()
            for task in message.tasks.values():
                if (userid is None or task.userid == userid) and task.send_time is None:
                    task.confirm_at = now
            self._settle(now)

    def expire_tokens(self) -> None:
        """Make every issued access token expired, as if its lifetime had passed."""
        with self._lock:
            now = self._clock()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}

    def reset(self) -> None:
        """Forget all state and restore the config the fake was created with."""
        with self._lock:
            self._reset_state()

    # --- inspection ---

    def messages(self) -> list[JSONDict]:
        """Every bulk message received, with its sender tasks and receiver statuses."""
        with self._lock:
            self._settle(self._clock())
            return [_message_json(message) for message in self._messages.values()]

    def calls(self) -> list[JSONDict]:
        """Every WeCom API call answered: endpoint, HTTP status and errcode (no tokens)."""
        with self._lock:
            return [dict(call) for call in self._calls]

    # --- HTTP dispatch ---

    def handle_file(self, raw_path: str) -> tuple[str, bytes] | None:
        """A file a route module serves under /_fake/ (a contact way's QR image, say):
        (content type, bytes), or None when the path names none (then answered as JSON)."""
        path = urlsplit(raw_path).path
        if not path.startswith(ADMIN_PREFIX):
            return None
        rest = path[len(ADMIN_PREFIX) :]
        for prefix, handler in _directory_files().items():
            if rest.startswith(prefix):
                with self._lock:
                    return handler(self, rest[len(prefix) :])
        return None

    def handle_http(self, method: str, raw_path: str, body: bytes) -> tuple[int, JSONDict]:
        """Answer one HTTP request: (status, JSON body). Called from the server's threads."""
        url = urlsplit(raw_path)
        if url.path.startswith(ADMIN_PREFIX):
            return self._handle_admin(method, url.path[len(ADMIN_PREFIX) :], body)
        endpoint = url.path[len(API_PREFIX) :] if url.path.startswith(API_PREFIX) else None
        if endpoint is None or not _is_endpoint(endpoint):
            return HTTPStatus.NOT_FOUND, {"error": "not found"}
        query = {key: values[0] for key, values in parse_qs(url.query).items()}

        latency = self.config.latency_seconds
        if latency:
            time.sleep(latency)  # outside the lock: a slow call must not stall the others
        with self._lock:
            status, payload = self._answer(endpoint, query, body)
            self._calls.append(
                {"endpoint": endpoint, "http_status": status, "errcode": payload.get("errcode")}
            )
        return status, payload

    def _answer(self, endpoint: str, query: Mapping[str, str], body: bytes) -> tuple[int, JSONDict]:
        fault = self._take_fault(endpoint)
        if fault is not None and fault.http_status is not None:
            return fault.http_status, {"error": fault.errmsg}
        if fault is not None and fault.errcode is not None:
            return HTTPStatus.OK, {"errcode": fault.errcode, "errmsg": fault.errmsg}
        now = self._clock()
        self._settle(now)
        try:
            if endpoint == ENDPOINT_GETTOKEN:
                result = self._gettoken(query, now)
            else:
                self._check_token(query.get("access_token"), now)
                result = self._dispatch(endpoint, _request_json(body, query), now)
        except WeComError as error:
            return HTTPStatus.OK, {"errcode": error.errcode, "errmsg": error.errmsg}
        return HTTPStatus.OK, {"errcode": ERRCODE_OK, "errmsg": "ok", **result}

    def _take_fault(self, endpoint: str) -> _Fault | None:
        for key in (endpoint, ANY_ENDPOINT):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining == 0:
                    queue.popleft()
                return fault
        return None

    def _dispatch(self, endpoint: str, body: JSONDict, now: float) -> JSONDict:
        route = _directory_routes().get(endpoint)
        if route is not None:
            return route(self, body, now)
        if endpoint == ENDPOINT_ADD_MSG_TEMPLATE:
            return self._add_msg_template(body, now)
        if endpoint == ENDPOINT_GET_GROUPMSG_TASK:
            return self._get_groupmsg_task(body)
        if endpoint == ENDPOINT_GET_GROUPMSG_SEND_RESULT:
            return self._get_groupmsg_send_result(body)
        return self._get_groupmsg_list_v2(body)

    # --- tokens ---

    def _gettoken(self, query: Mapping[str, str], now: float) -> JSONDict:
        corpid, secret = query.get("corpid"), query.get("corpsecret")
        if not corpid:
            raise WeComError(ERRCODE_MISSING_CORPID, "corpid missing")
        if not secret:
            raise WeComError(ERRCODE_MISSING_SECRET, "corpsecret missing")
        corps = self._config.corps
        if corps is not None and corpid not in corps:
            raise WeComError(ERRCODE_INVALID_CORPID, "invalid corpid")
        if corps is not None and corps[corpid] != secret:
            raise WeComError(ERRCODE_INVALID_SECRET, "invalid credential")
        # The real API returns the same token while it is valid and a new one after expiry.
        token = self._current_token.get((corpid, secret))
        if token is None or self._tokens[token] <= now:
            token = secrets.token_urlsafe(48)
            self._tokens[token] = now + self._config.token_ttl_seconds
            self._current_token[(corpid, secret)] = token
        expires_in = max(1, int(self._tokens[token] - now))
        return {"access_token": token, "expires_in": expires_in}

    def _check_token(self, token: str | None, now: float) -> None:
        if not token:
            raise WeComError(ERRCODE_MISSING_ACCESS_TOKEN, "access_token missing")
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise WeComError(ERRCODE_INVALID_ACCESS_TOKEN, "invalid access_token")
        if expires_at <= now:
            raise WeComError(ERRCODE_ACCESS_TOKEN_EXPIRED, "access_token expired")

    # --- bulk messages ---

    def _add_msg_template(self, body: JSONDict, now: float) -> JSONDict:
        chat_type = body.get("chat_type", "single")
        if chat_type not in ("single", "group"):
            raise WeComError(ERRCODE_INVALID_PARAMETER, "chat_type must be single or group")
        sender = body.get("sender") or None
        if sender is not None and not isinstance(sender, str):
            raise WeComError(ERRCODE_INVALID_PARAMETER, "sender must be a string")
        _check_content(body)

        fail_list: list[str] = []
        assignments: dict[str, list[str]] = {sender: []} if sender else {}
        if chat_type == "group":
            if sender is None:
                raise WeComError(ERRCODE_INVALID_PARAMETER, "sender is required for group")
            assignments[sender] = _id_list(body, "chat_id_list", MAX_CHAT_IDS)
        else:
            external_userids = _id_list(body, "external_userid", MAX_EXTERNAL_USERIDS)
            if not external_userids and sender is None:
                raise WeComError(
                    ERRCODE_INVALID_PARAMETER, "external_userid and sender cannot both be empty"
                )
            for external_userid in external_userids:
                staff = sender if sender is not None else self._staff_of(external_userid)
                if staff is None or not self._is_contact(staff, external_userid):
                    fail_list.append(external_userid)
                else:
                    assignments.setdefault(staff, []).append(external_userid)

        delay = self._config.confirmation_delay_seconds
        msgid = f"msg{secrets.token_urlsafe(24)}"
        self._messages[msgid] = _BulkMessage(
            msgid=msgid,
            chat_type=chat_type,
            created_at=now,
            request=body,
            fail_list=fail_list,
            tasks={
                staff: _SenderTask(
                    userid=staff,
                    receivers=[_Receiver(target_id) for target_id in targets],
                    confirm_at=None if delay is None else now + delay,
                    order=next(self._order),
                )
                for staff, targets in assignments.items()
            },
        )
        logger.info(
            "wecom_fake.msg_template_created",
            extra={
                "msgid": msgid,
                "chat_type": chat_type,
                "sender_count": len(assignments),
                "receiver_count": sum(len(targets) for targets in assignments.values()),
                "fail_count": len(fail_list),
            },
        )
        self._settle(now)
        return {"fail_list": fail_list, "msgid": msgid}

    def _get_groupmsg_task(self, body: JSONDict) -> JSONDict:
        message = self._message_for(body)
        tasks, next_cursor = _page(
            list(message.tasks.values()), body, TASK_PAGE_DEFAULT, TASK_PAGE_MAX
        )
        task_list = []
        for task in tasks:
            entry: JSONDict = {
                "userid": task.userid,
                "status": SENDER_UNSENT if task.send_time is None else SENDER_SENT,
            }
            if task.send_time is not None:
                entry["send_time"] = task.send_time
            task_list.append(entry)
        return {"next_cursor": next_cursor, "task_list": task_list}

    def _get_groupmsg_send_result(self, body: JSONDict) -> JSONDict:
        message = self._message_for(body)
        userid = body.get("userid")
        if not isinstance(userid, str) or not userid:
            raise WeComError(ERRCODE_INVALID_PARAMETER, "userid is required")
        task = message.tasks.get(userid)
        receivers, next_cursor = _page(
            task.receivers if task else [], body, TASK_PAGE_DEFAULT, TASK_PAGE_MAX
        )
        id_field = "external_userid" if message.chat_type == "single" else "chat_id"
        send_list = []
        for receiver in receivers:
            entry: JSONDict = {
                id_field: receiver.target_id,
                "userid": userid,
                "status": receiver.status,
            }
            if receiver.send_time is not None:
                entry["send_time"] = receiver.send_time
            send_list.append(entry)
        return {"next_cursor": next_cursor, "send_list": send_list}

    def _get_groupmsg_list_v2(self, body: JSONDict) -> JSONDict:
        chat_type = body.get("chat_type")
        if chat_type not in ("single", "group"):
            raise WeComError(ERRCODE_INVALID_PARAMETER, "chat_type must be single or group")
        start_time, end_time = body.get("start_time"), body.get("end_time")
        if not _is_int(start_time) or not _is_int(end_time):
            raise WeComError(ERRCODE_INVALID_PARAMETER, "start_time and end_time are required")
        # Messages created through the API are "enterprise" ones (create_type 0) and have no
        # creator, so a creator filter or filter_type 1 (personal) matches none of them.
        filter_type = body.get("filter_type", 2)
        matches = [
            message
            for message in self._messages.values()
            if message.chat_type == chat_type
            and start_time <= int(message.created_at) <= end_time
            and not body.get("creator")
            and filter_type in (0, 2)
        ]
        page, next_cursor = _page(matches, body, LIST_PAGE_DEFAULT, LIST_PAGE_MAX)
        group_msg_list = []
        for message in page:
            entry: JSONDict = {
                "msgid": message.msgid,
                "create_time": int(message.created_at),
                "create_type": 0,
            }
            for field in ("text", "attachments"):
                if field in message.request:
                    entry[field] = message.request[field]
            group_msg_list.append(entry)
        return {"next_cursor": next_cursor, "group_msg_list": group_msg_list}

    def _message_for(self, body: JSONDict) -> _BulkMessage:
        msgid = body.get("msgid")
        if not isinstance(msgid, str) or msgid not in self._messages:
            raise WeComError(ERRCODE_INVALID_PARAMETER, "invalid msgid")
        return self._messages[msgid]

    # --- contacts, confirmation and the platform cap ---

    def _is_contact(self, staff: str, external_userid: str) -> bool:
        contacts = self._config.contacts
        return contacts is None or external_userid in contacts.get(staff, frozenset())

    def _staff_of(self, external_userid: str) -> str | None:
        contacts = self._config.contacts
        if contacts is None:
            return self._config.default_sender_userid
        return next((s for s in sorted(contacts) if external_userid in contacts[s]), None)

    def _settle(self, now: float) -> None:
        """Send every task whose confirmation time has come, earliest first, so that the cap
        counts deliveries in the order the platform would have made them."""
        due = [
            (task.confirm_at, task.order, message, task)
            for message in self._messages.values()
            for task in message.tasks.values()
            if task.send_time is None and task.confirm_at is not None and task.confirm_at <= now
        ]
        for confirm_at, _, message, task in sorted(due, key=lambda item: item[:2]):
            self._send(message, task, confirm_at)

    def _send(self, message: _BulkMessage, task: _SenderTask, at: float) -> None:
        task.send_time = int(at)
        for receiver in task.receivers:
            key = (message.chat_type, receiver.target_id)
            if message.chat_type == "single" and not self._is_contact(task.userid, key[1]):
                receiver.status = RECEIVER_NOT_CONTACT  # the customer left after creation
            elif self._is_over_cap(key, at):
                receiver.status = RECEIVER_OVER_CAP
            else:
                receiver.status = RECEIVER_SENT
                receiver.send_time = int(at)
                self._deliveries.setdefault(key, []).append(at)
        logger.info(
            "wecom_fake.task_sent",
            extra={
                "msgid": message.msgid,
                "sent_count": sum(r.status == RECEIVER_SENT for r in task.receivers),
                "over_cap_count": sum(r.status == RECEIVER_OVER_CAP for r in task.receivers),
            },
        )

    def _is_over_cap(self, key: tuple[str, str], at: float) -> bool:
        cap = self._config.cap_per_receiver
        if cap is None:
            return False
        window_start = _window_start(at, self._config.cap_period)
        received = sum(window_start <= t <= at for t in self._deliveries.get(key, []))
        return received >= cap

    # --- admin endpoints ---

    def _handle_admin(self, method: str, action: str, body: bytes) -> tuple[int, JSONDict]:
        try:
            if method == "GET" and action == "config":
                return HTTPStatus.OK, {"config": self.config.to_json()}
            if method == "GET" and action == "messages":
                return HTTPStatus.OK, {"messages": self.messages()}
            if method == "GET" and action == "calls":
                return HTTPStatus.OK, {"calls": self.calls()}
            if method != "POST":
                return HTTPStatus.NOT_FOUND, {"error": "not found"}
            data = _admin_json(body)
            if action == "config":
                return HTTPStatus.OK, {"config": self.configure(**data).to_json()}
            if action == "inject":
                self._inject_from_json(data)
            elif action == "confirm":
                self.confirm(str(data.get("msgid")), data.get("userid"))
            elif action == "expire_tokens":
                self.expire_tokens()
            elif action == "reset":
                self.reset()
            else:
                return HTTPStatus.NOT_FOUND, {"error": "not found"}
        except LookupError as error:
            return HTTPStatus.NOT_FOUND, {"error": str(error)}
        except (ValueError, TypeError) as error:
            return HTTPStatus.BAD_REQUEST, {"error": str(error)}
        return HTTPStatus.OK, {"ok": True}

    def _inject_from_json(self, data: JSONDict) -> None:
        endpoint, times = data.get("endpoint", ANY_ENDPOINT), data.get("times", 1)
        if ("errcode" in data) == ("http_status" in data):
            raise ValueError("give exactly one of errcode and http_status")
        if "errcode" in data:
            self.inject_errcode(endpoint, data["errcode"], times=times, errmsg=data.get("errmsg"))
        else:
            self.inject_http_error(endpoint, status=data["http_status"], times=times)


class _FakeWeComServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the process alive

    def __init__(self, address: tuple[str, int], fake: FakeWeCom) -> None:
        self.fake = fake
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _FakeWeComServer

    def do_GET(self) -> None:
        file = self.server.fake.handle_file(self.path)
        if file is not None:
            self._respond_file(*file)
            return
        self._respond(*self.server.fake.handle_http("GET", self.path, b""))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._respond(*self.server.fake.handle_http("POST", self.path, body))

    def _respond(self, status: int, payload: JSONDict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _respond_file(self, content_type: str, data: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The query string carries the access token or the corp secret: log the path only.
        logger.debug(
            "wecom_fake.request",
            extra={"method": self.command, "path": urlsplit(self.path).path, "status": code},
        )

    def log_message(self, format: str, *args: Any) -> None:
        logger.warning("wecom_fake.http_error", extra={"detail": format % args})


# --- helpers ---


# Modules serving the directory's endpoints, each with ROUTES: endpoint ->
# handler(fake, body, now) -> JSON (called under the fake's lock; raise WeComError to refuse).
_ROUTE_MODULES: tuple[str, ...] = (
    "devstack.wecom_fake_contact_ways",
    "devstack.wecom_fake_contacts",
    "devstack.wecom_fake_groups",
    "devstack.wecom_fake_tags",
)


@functools.cache
def _directory_routes() -> dict[str, Callable[[FakeWeCom, JSONDict, float], JSONDict]]:
    routes: dict[str, Callable[[FakeWeCom, JSONDict, float], JSONDict]] = {}
    for name in _ROUTE_MODULES:
        routes.update(importlib.import_module(name).ROUTES)
    return routes


@functools.cache
def _directory_files() -> dict[str, Callable[[FakeWeCom, str], tuple[str, bytes] | None]]:
    """Files a route module serves under /_fake/ (its FILES: path prefix -> handler)."""
    files: dict[str, Callable[[FakeWeCom, str], tuple[str, bytes] | None]] = {}
    for name in _ROUTE_MODULES:
        files.update(getattr(importlib.import_module(name), "FILES", {}))
    return files


def _is_endpoint(endpoint: str) -> bool:
    return endpoint in ENDPOINTS or endpoint in _directory_routes()


def check_loopback(host: str) -> None:
    """Refuse any address but loopback: the fake hands out tokens to anyone who asks."""
    if host == "localhost":
        return
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"the WeCom fake binds to loopback only, not {host}")


def _replace_config(config: FakeWeComConfig, changes: Mapping[str, Any]) -> FakeWeComConfig:
    known = {field.name for field in dataclasses.fields(FakeWeComConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown config fields: {', '.join(unknown)}")
    return dataclasses.replace(config, **changes)


def _parse_json(body: bytes) -> JSONDict:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WeComError(ERRCODE_INVALID_JSON, "data format error") from None
    if not isinstance(data, dict):
        raise WeComError(ERRCODE_INVALID_JSON, "data format error")
    return data


def _request_json(body: bytes, query: Mapping[str, str]) -> JSONDict:
    """A call's parameters: its JSON body, or a GET's query string (the token aside)."""
    if body:
        return _parse_json(body)
    return {key: value for key, value in query.items() if key != "access_token"}


def _admin_json(body: bytes) -> JSONDict:
    if not body:
        return {}
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _check_content(body: JSONDict) -> None:
    text = body.get("text")
    attachments = body.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise WeComError(ERRCODE_INVALID_PARAMETER, "attachments must be a list")
    if not (isinstance(text, dict) and text.get("content")) and not attachments:
        raise WeComError(ERRCODE_INVALID_PARAMETER, "text and attachments cannot both be empty")
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        raise WeComError(ERRCODE_INVALID_PARAMETER, f"at most {MAX_ATTACHMENTS} attachments")


def _id_list(body: JSONDict, field: str, maximum: int) -> list[str]:
    """The ids in `field`, duplicates dropped in order; non-strings are a parameter error."""
    ids = body.get(field) or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise WeComError(ERRCODE_INVALID_PARAMETER, f"{field} must be a list of strings")
    if len(ids) > maximum:
        raise WeComError(ERRCODE_INVALID_PARAMETER, f"{field} holds more than {maximum} ids")
    return list(dict.fromkeys(ids))


def _page(items: list[_T], body: JSONDict, default: int, maximum: int) -> tuple[list[_T], str]:
    """One page of `items` after `cursor` and the next cursor ("" when no more)."""
    limit = body.get("limit")
    if not _is_int(limit) or not 0 < limit <= maximum:
        limit = default
    cursor = body.get("cursor") or ""
    if not isinstance(cursor, str) or not (cursor == "" or cursor.isdigit()):
        raise WeComError(ERRCODE_INVALID_PARAMETER, "invalid cursor")
    start = int(cursor or 0)
    end = start + limit
    return items[start:end], str(end) if end < len(items) else ""


def _window_start(at: float, period: str | float) -> float:
    """Start of the cap window that contains `at`: a calendar period or a rolling span."""
    if not isinstance(period, str):
        return at - period
    moment = datetime.fromtimestamp(at, BEIJING)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=start.weekday())
    elif period == "month":
        start = start.replace(day=1)
    return start.timestamp()


def _message_json(message: _BulkMessage) -> JSONDict:
    id_field = "external_userid" if message.chat_type == "single" else "chat_id"
    return {
        "msgid": message.msgid,
        "chat_type": message.chat_type,
        "created_at": message.created_at,
        "request": copy.deepcopy(message.request),
        "fail_list": list(message.fail_list),
        "tasks": [
            {
                "userid": task.userid,
                "status": SENDER_UNSENT if task.send_time is None else SENDER_SENT,
                "confirm_at": task.confirm_at,
                "send_time": task.send_time,
                "receivers": [
                    {id_field: r.target_id, "status": r.status, "send_time": r.send_time}
                    for r in task.receivers
                ],
            }
            for task in message.tasks.values()
        ],
    }


def _delay_argument(value: str) -> float | None:
    return None if value == "never" else float(value)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.wecom_fake", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8811, help="port (0: any free port)")
    parser.add_argument(
        "--confirmation-delay",
        type=_delay_argument,
        default=0.0,
        help='seconds until staff confirm a task, or "never" (default 0)',
    )
    parser.add_argument("--cap", type=int, default=4, help="bulk messages per customer per period")
    parser.add_argument("--cap-period", default="month", help="day, week, month or seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument(
        "--demo-corp",
        action="store_true",
        help="serve the demo corp (devstack.demo_wecom): staff, customers, tags, chats, codes",
    )
    parser.add_argument(
        "--live-callback-url",
        default="",
        help="with --demo-corp: play customers arriving, told to this callback URL (signed "
        "with WECOM_CALLBACK_TOKEN, WECOM_CALLBACK_AES_KEY and WECOM_CORP_ID)",
    )
    parser.add_argument(
        "--live-every", type=float, default=20.0, help="seconds between live arrivals"
    )
    args = parser.parse_args(argv)
    live_keys = ("WECOM_CALLBACK_TOKEN", "WECOM_CALLBACK_AES_KEY", "WECOM_CORP_ID")
    if args.live_callback_url and not args.demo_corp:
        parser.error("--live-callback-url needs --demo-corp")
    if args.live_callback_url and not all(os.environ.get(key) for key in live_keys):
        parser.error(f"--live-callback-url needs {', '.join(live_keys)} in the environment")
    try:
        check_loopback(args.host)
        cap_period = (
            args.cap_period if args.cap_period in CALENDAR_PERIODS else float(args.cap_period)
        )
        config = FakeWeComConfig(
            confirmation_delay_seconds=args.confirmation_delay,
            cap_per_receiver=args.cap,
            cap_period=cap_period,
            latency_seconds=args.latency,
        )
    except ValueError as error:
        parser.error(str(error))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fake = FakeWeCom(config, host=args.host, port=args.port)
    base_url = fake.start()
    live = None
    if args.demo_corp:
        # By name, like the route modules: it imports this module.
        demo_wecom = importlib.import_module("devstack.demo_wecom")
        demo_wecom.demo_install(fake)
        if args.live_callback_url:
            live = demo_wecom.LiveArrivals(
                fake,
                callback_url=args.live_callback_url,
                token=os.environ["WECOM_CALLBACK_TOKEN"],
                aes_key=os.environ["WECOM_CALLBACK_AES_KEY"],
                corp_id=os.environ["WECOM_CORP_ID"],
                every=args.live_every,
            )
            live.start()
    print(
        f"WeCom fake listening on {base_url} (wechatpy API_BASE_URL {fake.api_base_url}, "
        f"admin {base_url}{ADMIN_PREFIX})",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        fake.stop()


if __name__ == "__main__":
    main()
