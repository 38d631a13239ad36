"""`wecom_callback_send`: play WeCom and send one 客户联系 event, signed and encrypted, to a
running server's /wecom/callback. It signs with WECOM_CALLBACK_TOKEN / WECOM_CALLBACK_AES_KEY
and WECOM_CORP_ID, or, where unset, with the values `make run` gives its stack.

    manage.py wecom_callback_send contact add_external_contact --user-id zhangsan \\
        --external-userid wmDemo0001 --state video-42
    manage.py wecom_callback_send chat update --chat-id wrDemo01 --update-detail add_member \\
        --members wmDemo0001,wmDemo0002 --join-scene 3
    manage.py wecom_callback_send tag create --id etDemoTag1 --tag-type tag
    manage.py wecom_callback_send verify        # WeCom's URL check
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devstack.demo import DEMO_CORP_ID
from devstack.management.commands.run_stack import (
    WECOM_LOCAL_CALLBACK_AES_KEY,
    WECOM_LOCAL_CALLBACK_TOKEN,
)
from devstack.wecom_callbacks import (
    CHAT_CHANGES,
    CONTACT_CHANGES,
    TAG_CHANGES,
    CallbackEmitter,
    chat_event_xml,
    contact_event_xml,
    tag_event_xml,
)


class Command(BaseCommand):
    help = "Send one WeCom callback event (as WeCom would) to a running server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["contact", "chat", "tag", "verify"])
        parser.add_argument(
            "change_type",
            nargs="?",
            default="",
            help=f"contact: {', '.join(CONTACT_CHANGES)}; chat: {', '.join(CHAT_CHANGES)}; "
            f"tag: {', '.join(TAG_CHANGES)}",
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000/wecom/callback")
        parser.add_argument("--user-id", default="")
        parser.add_argument("--external-userid", default="")
        parser.add_argument("--state")
        parser.add_argument("--welcome-code")
        parser.add_argument("--source")
        parser.add_argument("--fail-reason")
        parser.add_argument("--chat-id", default="")
        parser.add_argument("--update-detail")
        parser.add_argument("--join-scene", type=int)
        parser.add_argument("--quit-scene", type=int)
        parser.add_argument("--members", help="comma-separated ids (MemChangeList)")
        parser.add_argument("--id", default="", help="tag or tag group id")
        parser.add_argument("--tag-type", default="tag", choices=["tag", "tag_group"])
        parser.add_argument("--strategy-id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        emitter = CallbackEmitter(
            options["url"],
            token=settings.WECOM_CALLBACK_TOKEN or WECOM_LOCAL_CALLBACK_TOKEN,
            aes_key=settings.WECOM_CALLBACK_AES_KEY or WECOM_LOCAL_CALLBACK_AES_KEY,
            corp_id=_corp_id(),
        )
        if options["kind"] == "verify":
            status, body = emitter.verify_url()
        else:
            status, body = emitter.send(self._message(options))
        self.stdout.write(f"{status} {body}")
        if status != 200:
            raise CommandError("refused")

    def _message(self, options: dict[str, Any]) -> str:
        kind, change_type = options["kind"], options["change_type"]
        corp_id = _corp_id()
        if kind == "contact" and change_type in CONTACT_CHANGES:
            return contact_event_xml(
                change_type,
                corp_id=corp_id,
                user_id=options["user_id"],
                external_userid=options["external_userid"],
                state=options["state"],
                welcome_code=options["welcome_code"],
                source=options["source"],
                fail_reason=options["fail_reason"],
            )
        if kind == "chat" and change_type in CHAT_CHANGES:
            members = options["members"]
            return chat_event_xml(
                change_type,
                corp_id=corp_id,
                chat_id=options["chat_id"],
                update_detail=options["update_detail"],
                join_scene=options["join_scene"],
                quit_scene=options["quit_scene"],
                mem_change_list=members.split(",") if members else None,
            )
        if kind == "tag" and change_type in TAG_CHANGES:
            return tag_event_xml(
                change_type,
                corp_id=corp_id,
                tag_id=options["id"],
                tag_type=options["tag_type"],
                strategy_id=options["strategy_id"],
            )
        raise CommandError(f"unknown change type {change_type!r} for {kind}")


def _corp_id() -> str:
    return str(settings.WECOM_CORP_ID or DEMO_CORP_ID)
