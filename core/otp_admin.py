"""The admin of the TOTP devices of the second factor (core.admin_login), in the operators'
words: replaces django-otp's own admin (which it subclasses for its QR code view). An
administrator adds a device for a user, then shows them its page: the QR code (and the otpauth
URI) that their authenticator app scans. Imported by core.admin."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.business_time import business_time_label


class TotpDeviceForm(forms.ModelForm):
    class Meta:
        model = TOTPDevice
        fields = ["user", "name", "confirmed"]
        labels = {"user": _("user"), "name": _("device name"), "confirmed": _("confirmed")}
        help_texts = {
            "name": _("What the user calls it, e.g. 手机."),
            "confirmed": _("Only a confirmed device is asked for its code at login."),
        }


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class TotpDeviceAdmin(TOTPDeviceAdmin):
    form = TotpDeviceForm
    list_display = ["user", "name", "confirmed", "created", "last_used", "qrcode_link"]
    list_filter = ["confirmed"]
    readonly_fields = ["created", "last_used", "qrcode_link"]

    def get_list_display(self, request: HttpRequest) -> Any:
        return self.list_display

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["user", "name", "confirmed"]
        if obj is not None:
            fields += ["created", "last_used", "qrcode_link"]
        return [(None, {"fields": fields})]

    @admin.display(description=_("created at"))
    def created(self, device: TOTPDevice) -> str:
        return business_time_label(device.created_at)

    @admin.display(description=_("last used"))
    def last_used(self, device: TOTPDevice) -> str:
        return business_time_label(device.last_used_at)

    @admin.display(description=_("QR code"))
    def qrcode_link(self, device: TOTPDevice) -> str:
        if device.pk is None:
            return ""
        href = reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})
        return format_html('<a href="{}">{}</a>', href, _("Show the QR code"))

    def config_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = TOTPDevice.objects.filter(pk=pk).select_related("user").first()
        if device is None or not self.has_view_or_change_permission(request, device):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": _("Two-step verification: %(user)s") % {"user": device.user},
            "device": device,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "core/totp_device_config.html", context)
