"""The demo corp in the WeCom fake of `make run`, and its live arrivals.

`demo_directory()` is a small corp whose staff members are the demo data's guides
(``demo_guide_01`` ...), with the demo channel QR codes (`DEMO_WAYS`, whose config ids and states
the demo loader's ContactWay rows share: devstack.demo_contact_ways). `LiveArrivals` plays
customers in a background thread of the fake: every few seconds one scans a demo code (the
directory gains the relation, the product is told by a signed ``add_external_contact`` callback
with the State), and now and then a staff member changes a customer's tags, a customer deletes
a staff member or joins a group chat.

Standard library only at import, like the fake: the callback emitter (wechatpy) is imported when
live arrivals start."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devstack.wecom_directory import (
    CHAT_MEMBER_STAFF,
    ContactWayConfig,
    Directory,
    wecom_like_id,
)

if TYPE_CHECKING:
    from devstack.wecom_callbacks import CallbackEmitter
    from devstack.wecom_fake import FakeWeCom

logger = logging.getLogger(__name__)

DEMO_SEED = 1212
DEMO_STAFF = 6
DEMO_CONTACTS = 300
DEMO_CHATS = 6
DEMO_TAGS = 24
DEMO_TAGS_PER_GROUP = 6
LIVE_EVERY_SECONDS = 20.0
LIVE_FIRST_AFTER_SECONDS = 15.0  # after the first full sync of `make run`, most often


@dataclasses.dataclass(frozen=True)
class DemoWay:
    name: str
    state: str
    config_id: str
    userids: tuple[str, ...]
    source_channel: str


def demo_userid(number: int) -> str:
    """The demo data's guide `number` (1-based): devstack.demo's StaffMember.wecom_userid."""
    return f"demo_guide_{number:02d}"


DEMO_WAYS: tuple[DemoWay, ...] = (
    DemoWay(
        "抖音直播间 12·12",
        "douyin-live-1212",
        "demo0000000000000000000000001212",
        (demo_userid(1), demo_userid(2)),
        "douyin",
    ),
    DemoWay(
        "小红书笔记 冬季护肤",
        "xhs-note-winter",
        "demo000000000000000000000000a1b2",
        (demo_userid(3),),
        "xiaohongshu",
    ),
    DemoWay(
        "快手短视频 #88",
        "ks-video-88",
        "demo00000000000000000000000000088",
        (demo_userid(4), demo_userid(5)),
        "kuaishou",
    ),
)


def demo_directory(*, qr_code_url: Callable[[str], str] = lambda config_id: "") -> Directory:
    """The demo corp: six guides sharing 300 customers, 24 corp tags in four groups, six group
    chats and the demo channel QR codes (their images at `qr_code_url(config_id)`)."""
    directory = Directory.generate(
        staff=DEMO_STAFF,
        contacts=DEMO_CONTACTS,
        chats=DEMO_CHATS,
        tags=DEMO_TAGS,
        tags_per_group=DEMO_TAGS_PER_GROUP,
        seed=DEMO_SEED,
    )
    rename = {f"staff{i:03d}": demo_userid(i + 1) for i in range(DEMO_STAFF)}
    directory.staff = {rename[u]: name for u, name in directory.staff.items()}
    follows = {}
    for follow in directory.follows.values():
        follow.userid = rename[follow.userid]
        follows[(follow.userid, follow.external_userid)] = follow
    directory.follows = follows
    for chat in directory.chats.values():
        chat.owner = rename[chat.owner]
        for member in chat.members:
            if member.type == CHAT_MEMBER_STAFF:
                member.userid = rename[member.userid]
    for way in DEMO_WAYS:
        directory.contact_ways[way.config_id] = ContactWayConfig(
            config_id=way.config_id,
            type=1 if len(way.userids) == 1 else 2,
            scene=2,
            state=way.state,
            user=list(way.userids),
            remark=way.name[:30],
            qr_code=qr_code_url(way.config_id),
        )
    return directory


def demo_install(fake: FakeWeCom) -> None:
    """Serve the demo corp from the running `fake` (its codes' images drawn by the fake)."""
    from devstack.wecom_fake_contact_ways import qr_code_url

    directory = demo_directory(qr_code_url=lambda config_id: qr_code_url(fake, config_id))

    def install(_: Directory) -> None:
        fake.directory = directory

    fake.change_directory(install)


# --- live arrivals ---------------------------------------------------------------------------

KIND_ADD = "add_external_contact"
KIND_EDIT = "edit_external_contact"
KIND_DELETE = "del_follow_user"
KIND_JOIN = "add_member"


def live_step(
    fake: FakeWeCom, emitter: CallbackEmitter, rng: random.Random, *, corp_id: str
) -> list[tuple[str, int]]:
    """One beat of the demo corp: a customer scans a demo code, and sometimes a staff member
    retags a customer, a customer deletes a staff member, or joins a group chat. Each change is
    made in the directory under the fake's lock, then told to the product by a signed callback.
    Returns (event kind, HTTP status or 0 when the product could not be reached) per event."""
    from devstack.wecom_callbacks import chat_event_xml, contact_event_xml
    from devstack.wecom_fake_contact_ways import contact_way_scan

    now = int(time.time())
    messages: list[tuple[str, str]] = []

    def change(directory: Directory) -> None:
        ways = [w for w in DEMO_WAYS if w.config_id in directory.contact_ways]
        if ways:
            way = rng.choice(ways)
            config = directory.contact_ways[way.config_id]
            external_userid = wecom_like_id("wm", rng)
            follow = contact_way_scan(
                directory,
                config_id=way.config_id,
                external_userid=external_userid,
                name=f"新客户{len(directory.contacts):04d}",
                createtime=now,
                userid=rng.choice(config.user),
                unionid=wecom_like_id("o", rng, 28),
            )
            messages.append(
                (
                    KIND_ADD,
                    contact_event_xml(
                        KIND_ADD,
                        user_id=follow.userid,
                        external_userid=external_userid,
                        corp_id=corp_id,
                        create_time=now,
                        state=follow.state,
                        welcome_code=wecom_like_id("", rng, 24),
                    ),
                )
            )
        roll = rng.random()
        follows = list(directory.follows.values())
        if roll < 0.25 and follows and directory.tags:
            follow = rng.choice(follows)
            follow.tag_ids = rng.sample(sorted(directory.tags), k=rng.randrange(1, 4))
            messages.append(
                (
                    KIND_EDIT,
                    contact_event_xml(
                        KIND_EDIT,
                        user_id=follow.userid,
                        external_userid=follow.external_userid,
                        corp_id=corp_id,
                        create_time=now,
                    ),
                )
            )
        elif roll < 0.35 and follows:
            follow = rng.choice(follows)
            del directory.follows[(follow.userid, follow.external_userid)]
            messages.append(
                (
                    KIND_DELETE,
                    contact_event_xml(
                        KIND_DELETE,
                        user_id=follow.userid,
                        external_userid=follow.external_userid,
                        corp_id=corp_id,
                        create_time=now,
                    ),
                )
            )
        elif roll < 0.55 and directory.chats and directory.contacts:
            chat = directory.chats[rng.choice(sorted(directory.chats))]
            members = {m.userid for m in chat.members}
            newcomers = [c for c in directory.contacts if c not in members]
            if newcomers:
                external_userid = rng.choice(newcomers)
                directory.chat_join(chat.chat_id, external_userid, join_time=now)
                messages.append(
                    (
                        KIND_JOIN,
                        chat_event_xml(
                            "update",
                            chat_id=chat.chat_id,
                            corp_id=corp_id,
                            create_time=now,
                            update_detail=KIND_JOIN,
                            join_scene=3,
                            mem_change_list=[external_userid],
                        ),
                    )
                )

    fake.change_directory(change)
    sent = []
    for kind, message in messages:
        try:
            status, _ = emitter.send(message, timestamp=now)
        except OSError:
            status = 0  # the product is not up (yet): the next full sync will see the change
        sent.append((kind, status))
    return sent


class LiveArrivals:
    """`live_step` every `every` seconds in a daemon thread (the first after `first_after`),
    until `stop()`. One log line per event: its kind, the product's answer and the count."""

    def __init__(
        self,
        fake: FakeWeCom,
        *,
        callback_url: str,
        token: str,
        aes_key: str,
        corp_id: str,
        every: float = LIVE_EVERY_SECONDS,
        first_after: float = LIVE_FIRST_AFTER_SECONDS,
        seed: int | None = None,
    ) -> None:
        from devstack.wecom_callbacks import CallbackEmitter

        self.fake = fake
        self.emitter = CallbackEmitter(callback_url, token=token, aes_key=aes_key, corp_id=corp_id)
        self.corp_id = corp_id
        self.every = every
        self.first_after = first_after
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wecom-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            wait = self.every
            try:
                sent = live_step(self.fake, self.emitter, self.rng, corp_id=self.corp_id)
            except Exception:  # a demo beat must never end the fake
                logger.exception("wecom_fake.live_failed")
                continue
            for kind, status in sent:
                self.counts[kind] = self.counts.get(kind, 0) + 1
                _log(kind, status, self.counts[kind])


def _log(kind: str, status: int, count: int) -> None:
    answer: Any = status or "unreachable"
    logger.info("wecom_fake.live %s -> %s (%s so far)", kind, answer, count)
