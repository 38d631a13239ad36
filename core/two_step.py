"""二次验证: an admin user enrols their own authenticator app (a TOTP device) for the second
factor of the admin login (core.admin_login). Served by the admin site (console.sites) at
`two-step/`, behind its login: a user who must give a code reaches it only once verified, so a
password alone never adds a device; the first administrator's device comes from
`manage.py add_totp_device`, or any user's from the admin of TOTP devices.

Adding shows a QR code (and the otpauth URI) for a new, unconfirmed device; the device counts
at login only after the user typed a code it made, which proves their app holds its secret."""

import base64
import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.qr import write_qrcode_image

from core.admin_login import otp_required_for

# The name of a device being added, until its user confirms it with a code.
PENDING_NAME = "pending"
DEVICE_NAME = "authenticator"


class ConfirmForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Verification code"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _qr_code_data_url(device: TOTPDevice) -> str:
    """The device's QR code as an inline SVG image (data: URL): the secret never leaves this
    page for another request."""
    image = io.BytesIO()
    write_qrcode_image(device.config_url, image)
    return "data:image/svg+xml;base64," + base64.b64encode(image.getvalue()).decode()


def _pending_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False, name=PENDING_NAME).first()


def two_step_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = ConfirmForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "add":
            with transaction.atomic():
                # One pending device at a time: an abandoned one is replaced.
                TOTPDevice.objects.filter(user=user, confirmed=False, name=PENDING_NAME).delete()
                TOTPDevice.objects.create(user=user, name=PENDING_NAME, confirmed=False)
            return HttpResponseRedirect(request.path)
        if action == "confirm":
            form = ConfirmForm(request.POST)
            pending = _pending_device(user)
            if pending is not None and form.is_valid():
                allowed, _details = pending.verify_is_allowed()
                if allowed and pending.verify_token(form.cleaned_data["otp_token"].strip()):
                    pending.confirmed = True
                    pending.name = DEVICE_NAME
                    pending.save(update_fields=["confirmed", "name"])
                    otp_login(request, pending)  # this session has just proved the device
                    messages.success(request, gettext("Your authenticator app is set up."))
                    return HttpResponseRedirect(request.path)
                form.add_error(
                    "otp_token", gettext("The verification code is wrong or has expired.")
                )
    pending = _pending_device(user)
    context = {
        **admin.site.each_context(request),
        "title": _("Two-step verification"),
        "devices": TOTPDevice.objects.devices_for_user(user, confirmed=True),
        "pending": pending,
        "qr_code": _qr_code_data_url(pending) if pending is not None else "",
        "form": form,
        "required": otp_required_for(user),
    }
    return TemplateResponse(request, "core/two_step.html", context)
