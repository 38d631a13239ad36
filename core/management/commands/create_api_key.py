"""`create_api_key --name NAME --scopes S1,S2`: create an integration API key.

Published contract: the plain key is printed alone on the LAST line of stdout, so scripts can
take it with `tail -n 1`. It is shown once and never stored.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from core.services.api_keys import SCOPES, api_key_create


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

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        requested = [scope for scope in scopes.split(",") if scope.strip()]
        try:
            api_key, raw_key = api_key_create(name=name, scopes=requested, actor="command")
        except DomainError as error:
            raise CommandError(_message(error)) from error
        self.stdout.write(
            f"Created API key name={api_key.name!r} prefix={api_key.prefix} "
            f"scopes={','.join(api_key.scopes)}. Store the key now: it is not shown again."
        )
        self.stdout.write(raw_key)


def _message(error: DomainError) -> str:
    details = [message for messages in error.detail.values() for message in messages]
    return "; ".join(details) if details else error.message
