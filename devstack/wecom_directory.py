"""What the WeCom fake knows about a corp beyond bulk messages: its staff members who may have
customers (配置了客户联系功能的成员), their external contacts and relations, the corp's customer
tags, its customer group chats and its contact ways (渠道活码). Plain data, guarded by the fake's
lock; the fake's endpoint modules read and change it, tests and `make run` fill it
(`Directory.generate`) or change it as a staff member would (and the fake can then tell the
product by callback).

Ids look like WeCom's: external_userid ``wm…``, chat_id ``wr…``, tag ids ``et…``."""

from __future__ import annotations

import dataclasses
import random
import string
from typing import Any

JSONDict = dict[str, Any]

CONTACT_TYPE_WECHAT = 1  # a WeChat user (微信用户)
CONTACT_TYPE_WECOM = 2  # a WeCom user of another corp
CHAT_MEMBER_STAFF = 1
CHAT_MEMBER_EXTERNAL = 2
ADD_WAY_QR_CODE = 1
ADD_WAY_PHONE = 2
ADD_WAY_CARD = 3
ADD_WAY_GROUP_CHAT = 4
ADD_WAY_CONTACT_WAY = 1  # a contact way's QR code counts as a scan


def wecom_like_id(prefix: str, rng: random.Random, length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(rng.choice(alphabet) for _ in range(length - len(prefix)))


@dataclasses.dataclass
class Contact:
    external_userid: str
    name: str
    type: int = CONTACT_TYPE_WECHAT
    gender: int = 0  # 0 unknown, 1 male, 2 female
    unionid: str = ""


@dataclasses.dataclass
class Follow:
    """A staff member's relation with an external contact (follow_user / follow_info)."""

    userid: str
    external_userid: str
    createtime: int
    add_way: int = ADD_WAY_QR_CODE
    state: str = ""
    remark: str = ""
    tag_ids: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CorpTag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0


@dataclasses.dataclass
class CorpTagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0


@dataclasses.dataclass
class ChatMember:
    userid: str
    type: int
    join_time: int
    join_scene: int = 1
    unionid: str = ""


@dataclasses.dataclass
class Chat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    members: list[ChatMember] = dataclasses.field(default_factory=list)
    notice: str = ""


@dataclasses.dataclass
class ContactWayConfig:
    config_id: str
    type: int
    scene: int
    state: str
    user: list[str]
    skip_verify: bool = True
    remark: str = ""
    qr_code: str = ""


@dataclasses.dataclass
class Directory:
    staff: dict[str, str] = dataclasses.field(default_factory=dict)  # userid -> name
    contacts: dict[str, Contact] = dataclasses.field(default_factory=dict)
    follows: dict[tuple[str, str], Follow] = dataclasses.field(default_factory=dict)
    tag_groups: dict[str, CorpTagGroup] = dataclasses.field(default_factory=dict)
    tags: dict[str, CorpTag] = dataclasses.field(default_factory=dict)
    chats: dict[str, Chat] = dataclasses.field(default_factory=dict)
    contact_ways: dict[str, ContactWayConfig] = dataclasses.field(default_factory=dict)

    def follows_of(self, userid: str) -> list[Follow]:
        """The staff member's relations, in a stable order (what cursors walk)."""
        return sorted(
            (f for f in self.follows.values() if f.userid == userid),
            key=lambda f: f.external_userid,
        )

    def follows_of_contact(self, external_userid: str) -> list[Follow]:
        return sorted(
            (f for f in self.follows.values() if f.external_userid == external_userid),
            key=lambda f: f.userid,
        )

    @classmethod
    def generate(
        cls,
        *,
        staff: int = 30,
        contacts: int = 20_000,
        chats: int = 50,
        tags: int = 200,
        tags_per_group: int = 10,
        seed: int = 18,
        start: int = 1_700_000_000,
    ) -> Directory:
        """A corp of `staff` members sharing `contacts` customers (about one in eight with a
        second staff member), `tags` corp tags in groups of `tags_per_group` (each relation
        holding up to three), and `chats` group chats of up to 200 customers each."""
        rng = random.Random(seed)
        directory = cls()
        userids = [f"staff{i:03d}" for i in range(staff)]
        directory.staff = {u: f"员工{i:03d}" for i, u in enumerate(userids)}
        for g in range(-(-tags // tags_per_group)):
            group_id = wecom_like_id("et", rng)
            directory.tag_groups[group_id] = CorpTagGroup(group_id, f"标签组{g:02d}", start, g)
        group_ids = list(directory.tag_groups)
        for t in range(tags):
            tag_id = wecom_like_id("et", rng)
            directory.tags[tag_id] = CorpTag(
                tag_id, f"标签{t:03d}", group_ids[t // tags_per_group], start, t % tags_per_group
            )
        tag_ids = list(directory.tags)
        for c in range(contacts):
            external_userid = wecom_like_id("wm", rng)
            directory.contacts[external_userid] = Contact(
                external_userid,
                name=f"客户{c:06d}",
                gender=rng.choice((0, 1, 2)),
                unionid=wecom_like_id("o", rng, 28) if rng.random() < 0.7 else "",
            )
            owners = [userids[c % staff]]
            if rng.random() < 0.125:
                owners.append(rng.choice(userids))
            for userid in dict.fromkeys(owners):
                directory.follows[(userid, external_userid)] = Follow(
                    userid,
                    external_userid,
                    createtime=start + rng.randrange(0, 86_400 * 365),
                    add_way=rng.choice((ADD_WAY_QR_CODE, ADD_WAY_PHONE, ADD_WAY_CARD)),
                    tag_ids=rng.sample(tag_ids, k=min(len(tag_ids), rng.randrange(0, 4))),
                )
        external_ids = list(directory.contacts)
        for h in range(chats):
            chat_id = wecom_like_id("wr", rng)
            owner = userids[h % staff]
            chat = Chat(chat_id, f"社群{h:02d}", owner, start + h * 3_600)
            chat.members.append(ChatMember(owner, CHAT_MEMBER_STAFF, chat.create_time))
            for external_userid in rng.sample(
                external_ids, k=min(len(external_ids), rng.randrange(20, 201))
            ):
                contact = directory.contacts[external_userid]
                chat.members.append(
                    ChatMember(
                        external_userid,
                        CHAT_MEMBER_EXTERNAL,
                        chat.create_time + rng.randrange(0, 86_400 * 30),
                        join_scene=rng.choice((1, 2, 3)),
                        unionid=contact.unionid,
                    )
                )
            directory.chats[chat_id] = chat
        return directory

    def chat_join(
        self, chat_id: str, userid: str, *, join_time: int, type: int = CHAT_MEMBER_EXTERNAL
    ) -> None:
        """`userid` joins the chat (scanning its QR code); a member already in it stays."""
        chat = self.chats[chat_id]
        if all(m.userid != userid for m in chat.members):
            contact = self.contacts.get(userid)
            unionid = contact.unionid if contact else ""
            chat.members.append(ChatMember(userid, type, join_time, 3, unionid))

    def chat_leave(self, chat_id: str, userid: str) -> None:
        """`userid` leaves the chat (or is removed)."""
        chat = self.chats[chat_id]
        chat.members = [m for m in chat.members if m.userid != userid]

    def chat_dismiss(self, chat_id: str) -> None:
        """The owner dismisses the chat (解散): WeCom forgets it."""
        del self.chats[chat_id]
