"""`add_totp_device USERNAME [--name NAME]`: give an admin user a TOTP device (the second factor
of the admin login, ADMIN_OTP_REQUIRED) and print what their authenticator app scans: a QR code
drawn in the terminal and the otpauth URI. The first administrator gets theirs this way, before
the setting is turned on; later ones can be added in the admin (二次验证 › TOTP devices).

Anyone who sees the output can make the user's codes: run it where only they can see it."""

import io
from typing import Any

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Add a TOTP device (second factor of the admin login) to a user; print its QR code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The admin user's login name.")
        parser.add_argument("--name", default="authenticator", help="The device's name.")
        parser.add_argument(
            "--no-qr", action="store_true", help="Print the otpauth URI only, not the QR code."
        )

    def handle(self, *args: Any, username: str, name: str, no_qr: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError("No admin user has this username.")
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        if not no_qr:
            drawing = qrcode.QRCode(border=1)
            drawing.add_data(device.config_url)
            text = io.StringIO()
            drawing.print_ascii(out=text, invert=True)
            self.stdout.write(text.getvalue())
        self.stdout.write(
            f"Added TOTP device {device.pk} ({name!r}) for user id {user.pk}. Scan the QR code "
            "or enter this URI in an authenticator app:"
        )
        self.stdout.write(device.config_url)
