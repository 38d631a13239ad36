"""`revoke_api_key PREFIX`: revoke an integration API key (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from core.services.api_keys import api_key_revoke


class Command(BaseCommand):
    help = "Revoke the API key with the given prefix (the part of the key before the dot)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="Key prefix, as shown by create_api_key or admin.")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        # A whole key pasted by mistake still names its prefix; the secret part is ignored.
        prefix = prefix.strip().partition(".")[0]
        try:
            api_key = api_key_revoke(prefix=prefix, actor="command")
        except DomainError as error:
            raise CommandError(f"{error.message} (prefix {prefix!r})") from error
        self.stdout.write(
            f"Revoked API key name={api_key.name!r} prefix={api_key.prefix} "
            f"at {api_key.revoked_at:%Y-%m-%d %H:%M:%S%z}."
        )
