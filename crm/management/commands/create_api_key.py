"""`create_api_key --name NAME --scopes S1,S2 [--expires-in-days N | --expires-at ISO8601]
[--allow-ip IP_OR_CIDR ...] [--owner WECOM_USERID]`: create an integration API key.

Published contract: the plain key is printed alone on the LAST line of stdout, so scripts can
take it with `tail -n 1`. It is shown once and never stored.

Lives in crm (not core, with the key service) because `--owner` names a crm staff member.
"""

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import DomainError
from core.services.api_keys import SCOPES, api_key_create
from crm.selectors.staff_members import staff_member_id_by_wecom_userid


class Command(BaseCommand):
    help = "Create an integration API key; the plain key is printed alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes: {', '.join(SCOPES)}; a resource alone means read "
            "and write; * means every scope.",
        )
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-in-days",
            type=int,
            metavar="N",
            help="The key stops working N days from now (default: never).",
        )
        expiry.add_argument(
            "--expires-at",
            metavar="ISO8601",
            help="The key stops working at this time, e.g. 2027-06-30T18:00:00+08:00 "
            "(without a zone: business time).",
        )
        parser.add_argument(
            "--allow-ip",
            action="append",
            default=[],
            metavar="IP_OR_CIDR",
            help="An address (203.0.113.7, 2001:db8::1) or network (203.0.113.0/24) the key "
            "may be used from; repeat for several. Default: anywhere.",
        )
        parser.add_argument(
            "--owner",
            metavar="WECOM_USERID",
            help="Bind the key to this staff member (跟进人): it answers only for their "
            "customers. Default: every customer.",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        scopes: str,
        expires_in_days: int | None,
        expires_at: str | None,
        allow_ip: list[str],
        owner: str | None,
        **options: Any,
    ) -> None:
        requested = [scope for scope in scopes.split(",") if scope.strip()]
        staff_member_id = None
        if owner is not None:
            staff_member_id = staff_member_id_by_wecom_userid(owner.strip())
            if staff_member_id is None:
                # The userid is not repeated: it names a person.
                raise CommandError("--owner: no staff member has this WeCom userid.")
        try:
            api_key, raw_key = api_key_create(
                name=name,
                scopes=requested,
                expires_at=_expiry(expires_in_days, expires_at),
                allowed_ips=allow_ip,
                staff_member_id=staff_member_id,
                actor="command",
            )
        except DomainError as error:
            raise CommandError(_message(error)) from error
        limits = ""
        if api_key.expires_at is not None:
            limits += f" expires_at={api_key.expires_at.isoformat()}"
        if api_key.allowed_ips:
            limits += f" allowed_ips={','.join(api_key.allowed_ips)}"
        if api_key.staff_member_id is not None:
            limits += f" staff_member_id={api_key.staff_member_id}"
        self.stdout.write(
            f"Created API key name={api_key.name!r} prefix={api_key.prefix} "
            f"scopes={','.join(api_key.scopes)}{limits}. Store the key now: it is not shown "
            "again."
        )
        self.stdout.write(raw_key)


def _expiry(in_days: int | None, at: str | None) -> datetime | None:
    if in_days is not None:
        if in_days <= 0:
            raise CommandError("--expires-in-days must be 1 or more.")
        return timezone.now() + timedelta(days=in_days)
    if at is None:
        return None
    try:
        parsed = parse_datetime(at.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(f"--expires-at: not an ISO 8601 date and time: {at!r}")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _message(error: DomainError) -> str:
    details = [message for messages in error.detail.values() for message in messages]
    return "; ".join(details) if details else error.message
